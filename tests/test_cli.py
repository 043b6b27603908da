"""The `midtecg` command: arguments checked before heavy imports, expected failures in one line, bugs shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from midtecg import cli
from midtecg.cli import commands, main

SRC = Path(__file__).resolve().parents[1] / "src"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "-n", "0"], "argument -n: expected a whole number of at least 1, got '0'"),
        (["generate", "-n", "-3"], "argument -n: expected a whole number"),
        (["generate", "--paired", "c", "-n", "-1"], "argument -n: expected a whole number"),
        (["generate", "--fs", "0"], "argument --fs: expected a whole number of at least 1"),
        (["generate", "--fs", "fast"], "argument --fs: expected a whole number"),
        (["generate", "--batch-size", "0"], "argument --batch-size"),
        (["generate", "--age", "nan"], "argument --age: expected a finite number"),
        (["generate", "--device", "gpu"], "argument --device: device 'gpu'"),
        (["generate", "--format", "wfdb,jpeg"], "argument --format: unknown output format"),
        (["generate", "--bogus"], "unrecognized arguments: --bogus"),
        (["evaluate", "--real", "c", "--synth", "s", "--out", "o", "--limit", "0"], "argument --limit"),
    ],
)
def test_bad_arguments_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--conditions", "{tmp}/nope.csv"], "--conditions {tmp}/nope.csv: no such file"),
        (["generate", "--paired", "{tmp}"], "--paired {tmp}: not a prepared cache"),
        (["generate", "--model", "{tmp}/nope"], "--model {tmp}/nope: does not exist"),
        (["generate", "--conditions", "{tmp}/c.csv", "-n", "2"], "-n cannot be combined with --conditions"),
        (["generate", "--out", "{tmp}/old"], "{tmp}/old already holds earlier results (conditions.csv)"),
        (["generate", "--out", "{tmp}/c.csv"], "{tmp}/c.csv exists and is not a folder"),
        (["generate", "--out", "{tmp}/" + "x" * 300], "File name too long"),
        (["train", "{tmp}/nope.toml"], "config {tmp}/nope.toml: no such file"),
        (["prepare", "{tmp}/nope", "{tmp}/out"], "source {tmp}/nope: no such folder"),
        (["report", "{tmp}/nope.json"], "evaluation_json {tmp}/nope.json: does not exist"),
        (["evaluate", "--real", "{tmp}", "--synth", "{tmp}", "--out", "{tmp}/e"], "--real {tmp}: not a prepared cache"),
        (["import-sssd-ecg", "{tmp}/nope.pkl", "{tmp}/m"], "checkpoint {tmp}/nope.pkl: no such file"),
    ],
)
def test_missing_files_and_reused_folders_are_one_line(argv, message, tmp_path, capsys):
    (tmp_path / "c.csv").write_text("labels\nNORM\n")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "conditions.csv").write_text("name\nsynth_00001\n")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"midtecg {argv[0]}: error: ") and message.format(tmp=tmp_path) in line


def test_refusals_come_before_heavy_imports(tmp_path):
    """A typo or a missing file is refused without importing torch or pandas (13-20 s on a busy machine)."""
    code = (
        f"import sys; from midtecg.cli import main; "
        f"codes = [main(['generate', '--conditions', {str(tmp_path / 'nope.csv')!r}]), "
        f"main(['generate', '--model', {str(tmp_path / 'nope')!r}]), "
        f"main(['train', {str(tmp_path / 'nope.toml')!r}]), "
        f"main(['train', {str(SRC.parent / 'configs' / 'tiny.toml')!r}, '--set', 'train.steps=0'])]; "
        f"print(codes, sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    for argv in (["-n", "0"], ["--fs", "0"], ["--bogus"]):
        code += (
            f"\ntry:\n    main(['generate', *{argv!r}])\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules)"
        )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.splitlines() == ["[2, 2, 2, 2] []", "2 False", "2 False", "2 False"], out.stdout + out.stderr
    assert "tiny.toml: [train] steps = 0: must be at least 1" in out.stderr


def test_os_errors_name_their_path():
    assert cli._message(PermissionError(13, "Permission denied", "/ro/out/wfdb")) == "/ro/out/wfdb: Permission denied"
    assert cli._message(OSError(36, "File name too long", "/a/" + "x" * 300)).endswith("x: File name too long")
    assert cli._message(FileNotFoundError("--model m: does not exist")) == "--model m: does not exist"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_output_folder_is_one_line(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["generate", "--out", str(folder / "o"), "--steps", "1", "--quiet"]) == 2
    finally:
        folder.chmod(0o700)
    assert str(folder) in _error_line(capsys)


def test_real_bugs_show_their_traceback(monkeypatch, tmp_path):
    (tmp_path / "e.json").write_text("{}")

    def broken(args):
        raise TypeError("a bug in our own code")

    monkeypatch.setattr(commands, "run_report", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["report", str(tmp_path / "e.json")])


def test_toml_syntax_errors_name_the_file(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[train]\nsteps = = 3\n")
    assert main(["train", str(config)]) == 2
    line = _error_line(capsys)
    assert f"{config}: TOML syntax error" in line and "line 2" in line


def test_bad_ecg_id_in_a_dataset_csv_names_file_and_line(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    pd.DataFrame({"record": ["r1", "r2"], "ecg_id": ["1", "abc"]}).to_csv(folder / "conditions.csv", index=False)
    assert main(["prepare", str(folder), str(tmp_path / "cache"), "--quiet"]) == 2
    assert f"{folder / 'conditions.csv'} line 3: ecg_id 'abc' is missing or not a whole number" in _error_line(capsys)


def test_truncated_npz_is_one_line(fixture_cache, tmp_path, capsys):
    from midtecg.io import save_npz

    good = save_npz(tmp_path / "s.npz", np.zeros((2, 12, 1000), np.float32))
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:300])
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(fixture_cache),
                "--synth",
                str(tmp_path / "cut.npz"),
                "--out",
                str(tmp_path / "e"),
                "--quiet",
                "--no-embeddings",
                "--no-clinical",
                "--no-privacy",
            ]
        )
        == 2
    )
    assert f"{tmp_path / 'cut.npz'}: not a readable .npz" in _error_line(capsys)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_generate_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert main(["generate", "--device", "cuda", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "device 'cuda': CUDA is not available" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_generate_overwrite_and_paired_counts(fixture_cache, tmp_path, capsys):
    out = tmp_path / "o"
    fast = ["--steps", "1", "--device", "cpu", "--quiet", "--format", "wfdb"]  # one step of the model's sampler
    assert main(["generate", "-n", "3", "--labels", "NORM", "--out", str(out), *fast]) == 0
    assert main(["generate", "-n", "1", "--labels", "NORM", "--out", str(out), *fast]) == 2
    assert "already holds earlier results (wfdb/, conditions.csv)" in _error_line(capsys)
    assert main(["generate", "--paired", str(fixture_cache), "-n", "2", "--out", str(out), "--overwrite", *fast]) == 0
    names = sorted(p.stem for p in (out / "wfdb").glob("*.hea"))
    assert names == sorted(pd.read_csv(out / "conditions.csv")["name"]) and len(names) == 2
    summary = capsys.readouterr().out
    assert "generated 2 ECGs" in summary and json.dumps(str(out))[1:-1] in summary
