"""Writing files safely, for every layer: atomic writes, record names given by users, paths kept inside a folder.

Atomic writes: the content goes to a temporary file in the destination folder and is moved into place with
``os.replace``, so a reader never sees a half-written file and an interrupted run leaves the previous version
intact.

Record names (:func:`check_record_name`, :func:`check_record_names`) become file names in every writer
(WFDB ``<name>.hea`` / ``.dat``, ``<name>.csv``, ``<name>.png``), so one rule holds for all of them, the
strictest of the formats (WFDB's): 1 to ``MAX_NAME_LENGTH`` (100) characters, letters, digits, ``_`` and
``-``, starting with a letter or a digit. That refuses absolute paths, ``..``, path separators, empty names,
spaces and dots; names may not be Windows device names (``CON``, ``NUL``, ...), and a list of names may not
hold two names that differ only in case (one file on case-insensitive file systems). :func:`path_inside`
also checks the resolved path, so nothing is ever written outside the output folder.

Output folders (:func:`check_output_folder`, :func:`staged_output`): a command that owns a set of entries
in its folder (``midtecg generate``: ``wfdb/``, ``csv/``, ``plots/``, ``ecgs.npz``, ``conditions.csv``)
refuses a folder that already holds any of them unless ``overwrite``, so two runs never mix. It writes into a
hidden staging folder inside the output folder and moves the entries into place only once everything is
written: the earlier run's entries are removed first (whole, with everything in them), the new ones moved in,
the last entry (the index) last. An interrupted run leaves the folder as it was, plus at most a hidden
``.midtecg-staging-*`` folder that readers skip and the next ``overwrite`` run removes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from midtecg.data.errors import DataError

__all__ = [
    "MAX_NAME_LENGTH",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_folder",
    "check_record_name",
    "check_record_names",
    "default_record_names",
    "path_inside",
    "staged_output",
]

MAX_NAME_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
STAGING_PREFIX = ".midtecg-staging-"
_DEVICE_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


# ----------------------------------------------------------------------------------------------------
# atomic writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` with ``os.replace``.

    The parent folder is created. On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are meant to be shared
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (no newline translation) and return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


# ----------------------------------------------------------------------------------------------------
# record names and paths


def check_record_name(name, where: str = "") -> str:
    """``name`` as a string when it is a safe record name (see the module docstring), else :class:`DataError`
    (a ``ValueError``).

    ``where`` prefixes the message (e.g. ``"requests.csv line 4: "``).
    """
    text = "" if name is None else str(name)
    shown = repr(text) if len(text) <= 60 else repr(text[:40] + "...") + f" ({len(text)} characters)"
    if not text.strip():
        raise DataError(f"{where}record name is empty")
    if len(text) > MAX_NAME_LENGTH:
        raise DataError(f"{where}record name {shown} is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(text):
        raise DataError(
            f"{where}record name {shown}: use only letters, digits, '_' and '-', starting with a "
            "letter or digit (no spaces, dots or path separators; WFDB names allow nothing else)"
        )
    if text.lower() in _DEVICE_NAMES:
        raise DataError(f"{where}record name {shown} is a reserved device name on Windows")
    return text


def check_record_names(names: Sequence, n: int | None = None, where: Sequence[str] | None = None) -> list[str]:
    """Check every name (:func:`check_record_name`) and that no two are equal, even ignoring case.

    ``n``: the number of names expected. ``where``: one message prefix per name (e.g. CSV lines), used in
    errors about that name.
    """
    names = list(names)
    if n is not None and len(names) != n:
        raise DataError(f"{len(names)} record names for {n} signals")
    prefixes = list(where) if where is not None else [""] * len(names)
    checked = [check_record_name(name, prefix) for name, prefix in zip(names, prefixes)]
    first: dict[str, int] = {}
    for i, name in enumerate(checked):
        j = first.setdefault(name.lower(), i)
        if j != i:
            how = "" if checked[j] == name else " (ignoring case)"
            if where is not None:
                raise DataError(
                    f"{prefixes[i]}record name {name!r} repeats {checked[j]!r}{how} of {prefixes[j].rstrip(': ')}"
                )
            raise DataError(
                f"record names {checked[j]!r} (entry {j + 1}) and {name!r} (entry {i + 1}) are the same{how}"
            )
    return checked


def default_record_names(n: int, prefix: str = "synth_") -> list[str]:
    """``synth_00001``, ``synth_00002``, ... (``n`` names)."""
    return [f"{prefix}{i + 1:05d}" for i in range(n)]


def path_inside(folder: str | os.PathLike, name: str, suffix: str = "") -> Path:
    """``folder / (name + suffix)`` for a checked record ``name``, refused unless its resolved path lies
    directly inside the resolved ``folder`` (a guard against names that escape, whatever the checks above)."""
    folder = Path(folder)
    path = folder / f"{check_record_name(name)}{suffix}"
    if path.resolve().parent != folder.resolve():
        raise DataError(f"record {name!r}: {path} would be written outside {folder}")
    return path


# ----------------------------------------------------------------------------------------------------
# output folders


def _present(out: Path, entries: Sequence[str]) -> list[str]:
    return [name for name in entries if (out / name).exists() or (out / name).is_symlink()]


def check_output_folder(out_dir: str | os.PathLike, entries: Sequence[str], overwrite: bool = False) -> Path:
    """``out_dir`` as a Path once it may receive ``entries``: refused (``FileExistsError`` naming the folder
    and what it holds) when it is a file, or holds any of ``entries`` and ``overwrite`` is false."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another output folder")
    found = _present(out, entries) if out.is_dir() else []
    if found and not overwrite:
        shown = ", ".join(f"{name}/" if (out / name).is_dir() else name for name in found)
        raise FileExistsError(
            f"{out} already holds earlier results ({shown}); pass --overwrite to replace "
            "them, or choose another output folder"
        )
    return out


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike, entries: Sequence[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder inside ``out_dir``; write entries there. On success the earlier ``entries`` of
    ``out_dir`` are removed and the staged ones moved in (in the order of ``entries``); on error nothing in
    ``out_dir`` changes. Anything staged that is not in ``entries`` is a ``ValueError`` (a bug in the caller).
    """
    out = check_output_folder(out_dir, entries, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for leftover in out.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        yield stage
        staged = {path.name for path in stage.iterdir()}
        if staged - set(entries):
            raise ValueError(f"staged output {sorted(staged - set(entries))} is not among {list(entries)}")
        check_output_folder(out, entries, overwrite)  # nothing appeared meanwhile
        trash = stage / ".replaced"
        trash.mkdir()
        for name in reversed(_present(out, entries)):  # the index (last entry) goes first
            os.replace(out / name, trash / name)
        for name in entries:
            if name in staged:
                os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
