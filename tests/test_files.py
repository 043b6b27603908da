"""Safe writing: record names from users, paths kept inside the output folder, staged output folders."""

from __future__ import annotations

import pytest

from midtecg.data.errors import DataError
from midtecg.files import (
    MAX_NAME_LENGTH,
    check_output_folder,
    check_record_name,
    check_record_names,
    path_inside,
    staged_output,
)

BAD_NAMES = [
    "/elsewhere/x",
    "../../x",
    "a/b",
    "a\\b",
    "..",
    ".",
    "",
    "   ",
    "x" * (MAX_NAME_LENGTH + 1),
    "a.b",
    "a b",
    "-rf",
    ".hidden",
    "ecg\n1",
    "ecg\x00",
    "NUL",
    "con",
    "é",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_record_names_are_refused(name):
    with pytest.raises(DataError, match="record name"):
        check_record_name(name, "requests.csv line 3: ")


def test_safe_names_pass_and_messages_name_the_line():
    assert check_record_name("patient_07-a") == "patient_07-a"
    assert check_record_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    with pytest.raises(DataError, match="requests.csv line 3: record name .*longer than 100"):
        check_record_name("y" * 300, "requests.csv line 3: ")
    lines = ["f.csv line 2: ", "f.csv line 3: ", "f.csv line 4: "]
    with pytest.raises(
        DataError, match="f.csv line 4: record name 'A' repeats 'a' \\(ignoring case\\) of f.csv line 2"
    ):
        check_record_names(["a", "b", "A"], where=lines)
    with pytest.raises(DataError, match="entry 1.*entry 2"):
        check_record_names(["r", "r"])
    with pytest.raises(DataError, match="2 record names for 3"):
        check_record_names(["r", "s"], n=3)


def test_path_inside_refuses_a_symlinked_escape(tmp_path):
    inside = tmp_path / "out"
    inside.mkdir()
    assert path_inside(inside, "r1", ".hea") == inside / "r1.hea"
    (tmp_path / "target.hea").write_text("")
    (inside / "r2.hea").symlink_to(tmp_path / "target.hea")
    with pytest.raises(DataError, match="outside"):
        path_inside(inside, "r2", ".hea")


ENTRIES = ("wfdb", "ecgs.npz", "conditions.csv")


def test_output_folder_with_earlier_results_is_refused(tmp_path):
    out = tmp_path / "o"
    assert check_output_folder(out, ENTRIES) == out  # absent: fine
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    check_output_folder(out, ENTRIES)  # unrelated files: fine
    (out / "wfdb").mkdir()
    with pytest.raises(FileExistsError, match="o already holds earlier results \\(wfdb/\\).*--overwrite"):
        check_output_folder(out, ENTRIES)
    check_output_folder(out, ENTRIES, overwrite=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        check_output_folder(tmp_path / "file", ENTRIES)


def test_staged_output_replaces_the_earlier_entries_whole(tmp_path):
    out = tmp_path / "o"
    with staged_output(out, ENTRIES) as stage:
        (stage / "wfdb").mkdir()
        for name in ("r1", "r2", "r3"):
            (stage / "wfdb" / f"{name}.hea").write_text(name)
        (stage / "conditions.csv").write_text("name\nr1\nr2\nr3\n")
    assert sorted(p.name for p in (out / "wfdb").iterdir()) == ["r1.hea", "r2.hea", "r3.hea"]
    (out / "notes.txt").write_text("mine")
    with staged_output(out, ENTRIES, overwrite=True) as stage:
        (stage / "ecgs.npz").write_bytes(b"new")
        (stage / "conditions.csv").write_text("name\nr1\n")
    # no stale record beside the new index; files that are not ours stay; no staging folder left
    assert sorted(p.name for p in out.iterdir()) == ["conditions.csv", "ecgs.npz", "notes.txt"]
    assert (out / "conditions.csv").read_text() == "name\nr1\n"


def test_an_interrupted_staged_output_changes_nothing(tmp_path):
    out = tmp_path / "o"
    with staged_output(out, ENTRIES) as stage:
        (stage / "conditions.csv").write_text("old")
    with pytest.raises(RuntimeError, match="killed"), staged_output(out, ENTRIES, overwrite=True) as stage:
        (stage / "conditions.csv").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["conditions.csv"]
    assert (out / "conditions.csv").read_text() == "old"
    with pytest.raises(ValueError, match="not among"), staged_output(out, ENTRIES, overwrite=True) as stage:
        (stage / "stray.txt").write_text("")
    assert (out / "conditions.csv").read_text() == "old"
