"""WFDB output and input for synthetic (or any) 12-lead ECGs.

Writing (:func:`write_wfdb`): one record per ECG (``<name>.hea`` + ``<name>.dat``), 12 signals in WFDB
order (I, II, III, aVR, aVL, aVF, V1-V6) named as such, units ``mV``, format 16 (16-bit two's complement),
baseline 0.

**Gain (resolution).** The default ``gain=1000`` ADC units per mV is PTB-XL's: 1 microvolt resolution and a
range of +-32.767 mV, far beyond any physiological ECG. The stored value is ``round(x * gain)``, so a round
trip through ``wfdb.rdsamp`` is exact to ``0.5 / gain`` mV. ``gain="auto"`` picks, per lead, the largest
1-2-5 value (1, 2, 5, 10, ..., at most 100000) whose range holds the lead: finer resolution when the
amplitude allows. The digital value -32768 is WFDB's "missing sample" code for format 16, so the usable
range is +-32767 units.

**Overflow.** A lead whose amplitude does not fit ``32767 / gain`` mV is never clipped silently. With
``on_overflow="adjust"`` (default) that lead's gain is lowered to the largest 1-2-5 value that fits and a
``DataWarning`` (a ``UserWarning``) names the record, the lead and the new gain (the header holds the
per-lead gain, so any WFDB reader scales it back correctly). With ``on_overflow="error"`` a ``DataError`` is
raised instead. NaN or infinite samples always raise ``DataError``.

**Conditions as header comments.** ``comments[i]`` (a dict) is written as lines ``# key: value`` in the
header, e.g. ``labels: NORM,SR``, ``age: 65``, ``sex: female``, ``seed: 1``, ``model: midt-ecg``. Lists,
tuples and arrays are written comma-joined; None and NaN are written as an empty value; other values
with ``str()``. Keys may not contain ``:``; keys and values may not contain tabs or line breaks (WFDB
forbids them) nor start or end with ``#``; surrounding spaces are stripped. :func:`read_wfdb_comments`
parses them back (values as strings, or typed with ``typed=True``).

Writes are atomic per record: the files are written in a temporary folder inside ``out_dir`` and moved
into place (``.dat`` first, then ``.hea``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import wfdb

from midtecg.data.errors import DataError, DataWarning
from midtecg.data.leads import WFDB_LEADS, wfdb_order
from midtecg.data.signals import check_signals
from midtecg.data.wfdb_record import read_wfdb_signal
from midtecg.files import path_inside
from midtecg.io.arrays import check_lead_names, record_names

__all__ = [
    "DIGITAL_MAX",
    "DEFAULT_GAIN",
    "format_comment_value",
    "read_wfdb_comments",
    "read_wfdb_folder",
    "read_wfdb_record",
    "write_wfdb",
]

DEFAULT_GAIN = 1000.0
DIGITAL_MAX = 32767  # format 16; -32768 is reserved for missing samples
MAX_AUTO_GAIN = 100000.0


# ----------------------------------------------------------------------------------------------------
# comments


def format_comment_value(value: Any) -> str:
    """The text written for one condition value (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return "" if math.isnan(float(value)) else str(value)
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        if isinstance(value, (set, frozenset)):
            items = sorted(value, key=str)
        elif isinstance(value, np.ndarray):
            items = value.ravel().tolist()
        else:
            items = list(value)
        return ",".join(format_comment_value(v) for v in items)
    return str(value).strip()


_BAD_COMMENT_CHARS = re.compile(r"[\t\n\r\f\v]")


def _comment_lines(record: str, items: Mapping[str, Any] | None) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, Mapping):
        raise DataError(f"record {record}: comments must be a dict of key -> value, not {type(items).__name__}")
    lines = []
    for key, value in items.items():
        key = str(key).strip()
        text = format_comment_value(value)
        if not key or ":" in key:
            raise DataError(f"record {record}: comment key {key!r} must be non-empty and contain no ':'")
        for part, what in ((key, "key"), (text, "value")):
            if _BAD_COMMENT_CHARS.search(part):
                raise DataError(f"record {record}: comment {what} {part!r} contains a tab or line break")
            if part.startswith("#") or part.endswith("#"):
                raise DataError(f"record {record}: comment {what} {part!r} may not start or end with '#'")
        lines.append(f"{key}: {text}" if text else f"{key}:")
    return lines


def _typed(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parse_comments(lines: Sequence[str], typed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    loose: list[str] = []
    for line in lines:
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            if line.strip():
                loose.append(line.strip())
            continue
        value = value.strip()
        out[key] = _typed(value) if typed else value
    if loose:
        out["_text"] = "\n".join(loose)
    return out


def _record_base(record_path: str | os.PathLike) -> str:
    p = str(record_path)
    for suffix in (".hea", ".dat"):
        if p.endswith(suffix):
            return p[: -len(suffix)]
    return p


def read_wfdb_comments(record_path: str | os.PathLike, typed: bool = False) -> dict[str, Any]:
    """Parse the ``key: value`` header comments of a record (path with or without ``.hea``).

    Values come back as the stripped strings written (``"NORM,SR"``, ``"65"``, ``""`` for missing).
    With ``typed=True``: ``""`` -> None, ``True``/``False`` -> bool, integers -> int, other numbers ->
    float, anything else stays a string (split lists yourself: ``value.split(",")``). Comment lines that
    are not ``key: value`` are returned joined under the key ``"_text"``.
    """
    header = wfdb.rdheader(_record_base(record_path))
    return _parse_comments(header.comments or [], typed)


# ----------------------------------------------------------------------------------------------------
# writing


def _nice_gains(upper: float) -> list[float]:
    """1-2-5 gains <= upper, largest first (down to 1e-3)."""
    out = []
    for exponent in range(int(math.floor(math.log10(upper))), -4, -1):
        for mantissa in (5.0, 2.0, 1.0):
            g = mantissa * 10.0**exponent
            if g <= upper * (1 + 1e-12):
                out.append(float(f"{g:.6g}"))
    return out


def _fits(peak: float, gain: float) -> bool:
    return round(peak * gain) <= DIGITAL_MAX


def _choose_gains(record: str, x: np.ndarray, gain, on_overflow: str) -> list[float]:
    peaks = np.abs(x).max(axis=1).astype(np.float64)
    if isinstance(gain, str):
        if gain != "auto":
            raise ValueError(f"gain must be a positive number or 'auto', not {gain!r}")
        return [next(g for g in _nice_gains(MAX_AUTO_GAIN) if _fits(p, g)) for p in peaks]
    gain = float(gain)
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain must be a positive number or 'auto', not {gain!r}")
    gains = []
    for lead, peak in zip(WFDB_LEADS, peaks):
        if _fits(peak, gain):
            gains.append(gain)
            continue
        limit = DIGITAL_MAX / gain
        if on_overflow == "error":
            raise DataError(
                f"record {record}: lead {lead} reaches {peak:.3f} mV, beyond the +-{limit:.3f} mV that "
                f"format 16 holds at gain {gain:g}/mV; lower the gain or use on_overflow='adjust'"
            )
        new = next((g for g in _nice_gains(gain) if _fits(peak, g)), None)
        if new is None:
            raise DataError(f"record {record}: lead {lead} amplitude {peak:.3g} mV cannot be stored in format 16")
        warnings.warn(
            f"record {record}: lead {lead} reaches {peak:.3f} mV, beyond +-{limit:.3f} mV at gain {gain:g}/mV; "
            f"stored with gain {new:g}/mV (resolution {1000.0 / new:g} uV) instead of clipping",
            DataWarning,
            stacklevel=3,
        )
        gains.append(new)
    return gains


def _reorder_to_wfdb(x: np.ndarray, lead_names: Sequence[str] | None) -> np.ndarray:
    names = check_lead_names(lead_names, x.shape[1])
    try:
        return x[:, wfdb_order(names, "signals")]
    except ValueError as error:
        raise DataError(str(error)) from None


def write_wfdb(
    signals,
    out_dir: str | os.PathLike,
    fs: float = 100,
    names: Sequence[str] | None = None,
    comments: Sequence[Mapping[str, Any]] | Any | None = None,
    *,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    gain: float | str = DEFAULT_GAIN,
    on_overflow: str = "adjust",
) -> list[Path]:
    """Write ``signals (N, 12, L)`` (mV) as WFDB records in ``out_dir``; return the record paths.

    The returned paths have no suffix (``out_dir/synth_00001``), as ``wfdb.rdsamp`` expects.
    ``names`` default to ``synth_00001``, ``synth_00002``, ...; ``comments`` is one dict per signal (or a
    DataFrame, one row per signal) written as ``key: value`` header comments. ``lead_names`` gives the
    order of axis 1 (default WFDB order); the files are always in WFDB order. See the module docstring
    for ``gain`` and ``on_overflow`` (``"adjust"`` or ``"error"``).
    """
    if on_overflow not in ("adjust", "error"):
        raise ValueError(f"on_overflow must be 'adjust' or 'error', not {on_overflow!r}")
    if not (isinstance(fs, (int, float, np.number)) and math.isfinite(float(fs)) and float(fs) > 0):
        raise DataError(f"sampling rate must be a positive number, got {fs!r}")
    x = np.asarray(signals)
    if x.ndim == 2:
        x = x[None]
    x = _reorder_to_wfdb(check_signals(x, "signals (WFDB cannot store NaN or inf)", min_records=0), lead_names)
    n = x.shape[0]
    names = record_names(names, n)
    if comments is not None and hasattr(comments, "to_dict") and hasattr(comments, "columns"):
        comments = comments.to_dict("records")
    if comments is not None:
        comments = list(comments)
        if len(comments) != n:
            raise DataError(f"{len(comments)} comment dicts for {n} signals")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # validate everything before writing anything
    plans = []
    for i, name in enumerate(names):
        lines = _comment_lines(name, comments[i] if comments is not None else None)
        gains = _choose_gains(name, x[i], gain, on_overflow)
        digital = np.round(x[i].astype(np.float64) * np.asarray(gains)[:, None]).astype(np.int64)
        plans.append((name, lines, gains, digital))

    paths = []
    tmp_dir = Path(tempfile.mkdtemp(prefix=".wfdb-", dir=out))
    try:
        for name, lines, gains, digital in plans:
            wfdb.wrsamp(
                name,
                fs=float(fs),
                units=["mV"] * 12,
                sig_name=list(WFDB_LEADS),
                d_signal=np.ascontiguousarray(digital.T),
                fmt=["16"] * 12,
                adc_gain=gains,
                baseline=[0] * 12,
                comments=lines,
                write_dir=str(tmp_dir),
            )
            os.replace(tmp_dir / f"{name}.dat", path_inside(out, name, ".dat"))
            os.replace(tmp_dir / f"{name}.hea", path_inside(out, name, ".hea"))
            paths.append(out / name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return paths


# ----------------------------------------------------------------------------------------------------
# reading


def read_wfdb_record(record_path: str | os.PathLike, typed: bool = False) -> tuple[np.ndarray, float, dict]:
    """Read one 12-lead record: ``(signal (12, L) float32 mV in WFDB order, fs, comments)``.

    The signal is read by :func:`midtecg.data.wfdb_record.read_wfdb_signal` (the one WFDB reader: lead names
    in any case and order, units ``mV``, ``uV`` and ``V`` converted to mV, checksums and truncation checked);
    flat leads are accepted silently. Raises ``DataError`` naming the record when a lead is missing,
    duplicated or unknown, when a unit is unknown, or when the signal holds missing samples (NaN).
    """
    base = _record_base(record_path)
    x, fs = read_wfdb_signal(base, f"record {base}", on_flat="ignore")
    return x, float(fs), read_wfdb_comments(base, typed=typed)


def read_wfdb_folder(
    directory: str | os.PathLike,
    *,
    recursive: bool = True,
    fs: float | None = None,
    typed: bool = False,
) -> tuple[np.ndarray, list[str], list[dict]]:
    """Read every WFDB record under ``directory``: ``(signals (N, 12, L) float32 mV, names, comments)``.

    Records are found by their ``.hea`` files (in subfolders too when ``recursive``), sorted by path;
    ``names`` are the record paths relative to ``directory`` without suffix (``synth_00001``,
    ``00000/00001_lr``). Leads are validated and put in WFDB order (see :func:`read_wfdb_record`). All
    records must share one sampling rate (``fs`` when given) and one length; no resampling is done.
    Raises ``DataError`` otherwise, and when the folder holds no record.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    pattern = "**/*.hea" if recursive else "*.hea"
    headers = sorted(
        p for p in root.glob(pattern) if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not headers:
        raise DataError(f"{root}: no WFDB records (.hea files) found")
    signals, names, comments, rates = [], [], [], []
    for hea in headers:
        base = hea.with_suffix("")
        name = base.relative_to(root).as_posix()
        x, rate, c = read_wfdb_record(base, typed=typed)
        if fs is not None and not math.isclose(rate, float(fs)):
            raise DataError(f"record {name}: sampled at {rate:g} Hz, expected {float(fs):g} Hz (no resampling here)")
        if signals and x.shape[1] != signals[0].shape[1]:
            raise DataError(
                f"record {name}: {x.shape[1]} samples, but {names[0]} has {signals[0].shape[1]}; "
                "all records must have the same length"
            )
        if rates and not math.isclose(rate, rates[0]):
            raise DataError(f"record {name}: sampled at {rate:g} Hz, but {names[0]} at {rates[0]:g} Hz")
        signals.append(x)
        names.append(name)
        comments.append(c)
        rates.append(rate)
    return np.stack(signals), names, comments
