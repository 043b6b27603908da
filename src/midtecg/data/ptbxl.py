"""Read an official PTB-XL folder (the full release or a partial copy in the same layout).

Signals come back as float32 millivolts, shape (12, L), in WFDB lead order (``leads.WFDB_LEADS``).
Default: 100 Hz, 1000 samples, from the 500 Hz record resampled with an anti-aliasing polyphase filter
(``scipy.signal.resample_poly(x, 1, 5)``, the authors' pipeline); ``source="100"`` reads the official
100 Hz files instead (they are not a plain decimation of the 500 Hz files: about 0.024 mV RMS apart);
``rate=500`` keeps the 500 Hz record (5000 samples).

Validation (:func:`read_wfdb_signal`); every problem names the record (``"PTB-XL ecg_id 17: ..."``):

- missing ``.hea`` / ``.dat``: :class:`MissingRecordError` (a :class:`DataError`), or, with
  ``on_missing="skip"``, a :class:`DataWarning` and ``None``;
- unreadable or corrupt header, a signal file shorter than the header promises (truncated), any error of the
  ``wfdb`` reader, and per-lead **checksums** that do not match the samples (a corrupt ``.dat`` of the right
  size): :class:`DataError` ("unreadable WFDB record ...");
- not 12 channels, unexpected sampling rate or length, unknown or duplicate lead names, unsupported units,
  NaN / inf / missing samples: :class:`DataError`. Lead names are matched case-insensitively (``AVR`` is
  ``aVR``) and the leads are **reordered by name** to the WFDB order when a file stores them differently;
- **flat leads** (peak-to-peak below ``FLAT_TOLERANCE_MV`` = 10 uV over the whole record; the smallest in the
  1,500-record shared subset is 196 uV): a recording fault, not an impossible file, so the record is kept
  with a :class:`DataWarning` naming the record and leads; ``strict=True`` (or ``on_flat="error"``) raises.

Splits: ``strat_fold`` 1-8 train, 9 validation, 10 test (``DEFAULT_SPLITS``); any fold selection works
(:func:`resolve_folds`, :func:`select_folds`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from scipy.signal import resample_poly

from midtecg.data.errors import DataError, DataWarning, MissingRecordError
from midtecg.data.leads import WFDB_LEADS, canonical_lead_name

__all__ = [
    "DEFAULT_SPLITS",
    "REQUIRED_COLUMNS",
    "FLAT_TOLERANCE_MV",
    "DURATION_S",
    "resolve_folds",
    "select_folds",
    "load_ptbxl_metadata",
    "read_wfdb_signal",
    "resample",
    "record_path",
    "read_ptbxl_record",
]

DEFAULT_SPLITS: dict[str, tuple[int, ...]] = {"train": (1, 2, 3, 4, 5, 6, 7, 8), "val": (9,), "test": (10,)}
REQUIRED_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "height", "weight", "scp_codes", "strat_fold",
                    "filename_lr", "filename_hr")
FLAT_TOLERANCE_MV = 0.01
DURATION_S = 10
_UNIT_SCALE = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


def resolve_folds(split) -> tuple[int, ...] | None:
    """``None`` (all), a split name (train, val, test), one fold or a list of folds -> the folds."""
    if split is None:
        return None
    if isinstance(split, str):
        if split not in DEFAULT_SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(DEFAULT_SPLITS)} or a list of folds")
        return DEFAULT_SPLITS[split]
    folds = (int(split),) if np.isscalar(split) else tuple(int(f) for f in split)
    if not folds:
        raise ValueError("an empty list of folds selects nothing")
    return folds


def select_folds(table: pd.DataFrame, split) -> pd.DataFrame:
    """Rows of a metadata / records table whose ``strat_fold`` is in ``split`` (see :func:`resolve_folds`)."""
    folds = resolve_folds(split)
    return table if folds is None else table[table["strat_fold"].isin(folds)]


def load_ptbxl_metadata(root: str | Path) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ecg_id (the ``ecg_id`` column is kept), required columns checked.

    Values are as in the file (``scp_codes`` is the dict string: parse it with
    :func:`midtecg.data.labels.parse_scp_codes`; demographics are cleaned by
    :func:`midtecg.data.demographics.clean_demographics`).
    """
    path = Path(root) / "ptbxl_database.csv"
    if not path.is_file():
        raise DataError(str(root), "not a PTB-XL folder: ptbxl_database.csv is missing")
    try:
        table = pd.read_csv(path)
    except Exception as error:
        raise DataError(str(path), f"unreadable CSV ({type(error).__name__}: {error})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(str(path), f"missing column(s) {missing}")
    if table["ecg_id"].duplicated().any():
        raise DataError(str(path), f"duplicate ecg_id {table.loc[table['ecg_id'].duplicated(), 'ecg_id'].iloc[0]}")
    folds = pd.to_numeric(table["strat_fold"], errors="coerce")
    if folds.isna().any():
        raise DataError(f"PTB-XL ecg_id {table.loc[folds.isna(), 'ecg_id'].iloc[0]}", "strat_fold is missing")
    return table.set_index("ecg_id", drop=False)


def _check_files(path: Path, header, record: str) -> None:
    """Signal files exist and hold at least what the header promises."""
    channels_per_file: dict[str, list[int]] = {}
    for k, name in enumerate(header.file_name or []):
        channels_per_file.setdefault(name, []).append(k)
    sizes = getattr(wfdb.io, "_signal", None)
    bytes_per_sample = getattr(sizes, "BYTES_PER_SAMPLE", {}) if sizes else {}
    for name, channels in channels_per_file.items():
        file = path.parent / name
        if not file.is_file():
            raise MissingRecordError(record, f"missing file {file}")
        bps = bytes_per_sample.get(str(header.fmt[channels[0]]), 0)
        if bps:
            offset = int((header.byte_offset or [0] * header.n_sig)[channels[0]] or 0)
            needed = offset + math.ceil((header.sig_len or 0) * len(channels) * bps)
            size = file.stat().st_size
            if size < needed:
                raise DataError(record, f"unreadable WFDB record {path}: signal file {file.name} is truncated "
                                        f"({size} bytes, the header needs {needed} for {header.sig_len} samples)")


def read_wfdb_signal(path: str | Path, record: str, fs: int | None = None, length: int | None = None,
                     strict: bool = False, *, min_length: int | None = None, checksum: bool = True,
                     on_flat: str | None = None, derive_limb_leads: bool = False,
                     allow_extra_channels: bool = False) -> tuple[np.ndarray, float]:
    """One WFDB record as float32 mV (12, L) in WFDB lead order, validated; returns ``(signal, fs)``.

    ``fs`` / ``length``: required sampling rate and exact number of samples (None: any); ``min_length``:
    at least that many samples. ``record`` names the record in messages. ``on_flat``: "warn", "error" or
    "ignore" (default "error" when ``strict`` else "warn"). ``derive_limb_leads``: rebuild missing II, III,
    aVR, aVL, aVF from I and II or aVF; ``allow_extra_channels``: ignore channels that are not ECG leads
    (both for generic folders; PTB-XL needs exactly the 12 leads).
    """
    path = Path(path)
    if path.suffix in (".hea", ".dat"):
        path = path.with_suffix("")
    hea = path.with_name(path.name + ".hea")
    if not hea.is_file():
        raise MissingRecordError(record, f"missing file {hea}")
    try:
        header = wfdb.rdheader(str(path))
    except Exception as error:  # wfdb raises many types for corrupt headers
        raise DataError(record, f"unreadable WFDB record {path}: bad header ({type(error).__name__}: {error})") from None
    if getattr(header, "seg_name", None) is not None or not header.n_sig or not header.sig_name:
        raise DataError(record, f"unreadable WFDB record {path}: not a single-segment record with signals")
    record_fs = float(header.fs)
    if fs is not None and record_fs != float(fs):
        raise DataError(record, f"sampling rate is {record_fs:g} Hz, expected {float(fs):g} Hz")
    sig_len = int(header.sig_len or 0)
    if length is not None and sig_len != length:
        raise DataError(record, f"has {sig_len} samples, expected {length}")
    if min_length is not None and sig_len < min_length:
        raise DataError(record, f"has {sig_len} samples ({sig_len / record_fs:g} s), needs at least {min_length} "
                                f"({min_length / record_fs:g} s)")
    _check_files(path, header, record)
    try:
        rec = wfdb.rdrecord(str(path), physical=False)
        digital = np.asarray(rec.d_signal)
        if digital.shape != (sig_len, header.n_sig):
            raise ValueError(f"{digital.shape} samples instead of {(sig_len, header.n_sig)}")
        if checksum and rec.checksum is not None:
            actual = digital.astype(np.int64).sum(axis=0) % 65536
            bad = [str(rec.sig_name[k]) for k, c in enumerate(rec.checksum) if c is not None and int(c) % 65536 != actual[k]]
            if bad:
                raise ValueError(f"checksum mismatch in lead(s) {', '.join(bad)}: the signal file is corrupt")
        physical = np.asarray(rec.dac(return_res=64), dtype=np.float64)
    except Exception as error:  # wfdb raises many types for truncated or corrupt data
        raise DataError(record, f"unreadable WFDB record {path} ({type(error).__name__}: {error})") from None

    names = [str(n) for n in rec.sig_name]
    leads: dict[str, np.ndarray] = {}
    extra: list[str] = []
    for k, raw in enumerate(names):
        try:
            name = canonical_lead_name(raw)
        except ValueError:
            extra.append(raw)
            continue
        if name in leads:
            raise DataError(record, f"lead names {names} are not the 12 standard leads ({name} appears twice)")
        unit = str((rec.units or ["mV"] * len(names))[k] or "mV").strip().lower()
        if unit not in _UNIT_SCALE:
            raise DataError(record, f"unknown signal units {rec.units} (expected mV, uV or V)")
        leads[name] = physical[:, k] * _UNIT_SCALE[unit]
    if not derive_limb_leads and not allow_extra_channels and len(names) != 12:
        raise DataError(record, f"expected 12 leads, found {len(names)} ({', '.join(names)})")
    if extra and not allow_extra_channels:
        raise DataError(record, f"lead names {names} are not the 12 standard leads (unknown: {', '.join(extra)})")
    if len(leads) < 12 and derive_limb_leads and all(n in leads for n in WFDB_LEADS[6:]) and "I" in leads \
            and ("II" in leads or "aVF" in leads):
        lead_i = leads["I"]
        avf = leads["aVF"] if "aVF" in leads else leads["II"] - 0.5 * lead_i
        for name, value in (("II", avf + 0.5 * lead_i), ("III", avf - 0.5 * lead_i), ("aVR", -0.75 * lead_i - 0.5 * avf),
                            ("aVL", 0.75 * lead_i - 0.5 * avf), ("aVF", avf)):
            leads.setdefault(name, value)
    if len(leads) != 12:
        missing = [n for n in WFDB_LEADS if n not in leads]
        raise DataError(record, f"expected 12 leads, found {len(leads)} ({', '.join(names)}; missing {', '.join(missing)})")
    x = np.stack([leads[name] for name in WFDB_LEADS])
    if not np.isfinite(x).all():
        bad = [f"{WFDB_LEADS[i]} ({int((~np.isfinite(x[i])).sum())})" for i in np.nonzero(~np.isfinite(x).all(axis=1))[0]]
        raise DataError(record, f"NaN, infinite or missing samples in lead(s) {', '.join(bad)}")
    on_flat = on_flat or ("error" if strict else "warn")
    if on_flat not in ("warn", "error", "ignore"):
        raise ValueError(f"on_flat must be 'warn', 'error' or 'ignore', got {on_flat!r}")
    flat = np.ptp(x, axis=1) < FLAT_TOLERANCE_MV
    if flat.any() and on_flat != "ignore":
        problem = (f"flat lead(s) {', '.join(WFDB_LEADS[i] for i in np.nonzero(flat)[0])} "
                   f"(peak-to-peak below {FLAT_TOLERANCE_MV * 1000:g} uV over the record)")
        if on_flat == "error":
            raise DataError(record, problem)
        warnings.warn(f"{record}: {problem}; kept", DataWarning, stacklevel=2)
    return x.astype(np.float32), (int(record_fs) if record_fs.is_integer() else record_fs)


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Anti-aliasing polyphase resampling along the last axis with the exact rational ratio ``fs_out / fs_in``
    (``resample_poly(x, 1, 5)`` for 500 -> 100 Hz); float32 out."""
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(str(fs_out)) / Fraction(str(fs_in))
    if ratio.denominator > 10_000 or ratio.numerator > 10_000:
        ratio = ratio.limit_denominator(1000)
    return resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def _source_name(source) -> str:
    source = str(source)
    if source not in ("500", "100"):
        raise ValueError(f"source must be '500' or '100' (the PTB-XL file rates), got {source!r}")
    return source


def record_path(root: str | Path, row, source_rate: str = "500") -> Path:
    """Path (without suffix) of a record's 500 Hz (``filename_hr``) or 100 Hz (``filename_lr``) files.

    ``row`` is a metadata row or an ``ecg_id`` (then the official naming ``records500/00000/00001_hr`` is used).
    """
    source_rate = _source_name(source_rate)
    if isinstance(row, (int, np.integer)):
        ecg_id = int(row)
        folder = f"{ecg_id // 1000 * 1000:05d}"
        return Path(root) / (f"records500/{folder}/{ecg_id:05d}_hr" if source_rate == "500"
                             else f"records100/{folder}/{ecg_id:05d}_lr")
    return Path(root) / str(row["filename_hr" if source_rate == "500" else "filename_lr"])


def _ecg_id(row) -> int:
    if isinstance(row, (int, np.integer)):
        return int(row)
    if isinstance(row, Mapping) or hasattr(row, "get"):
        value = row.get("ecg_id", None)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return int(value)
    return int(getattr(row, "name"))


def read_ptbxl_record(root: str | Path, row, rate: int = 100, source: str = "500", strict: bool = False, *,
                      source_rate: str | None = None, on_missing: str = "error", on_flat: str | None = None,
                      checksum: bool = True) -> np.ndarray | None:
    """The signal of one PTB-XL record as float32 mV (12, 10 s * rate), WFDB lead order.

    ``row``: a row of :func:`load_ptbxl_metadata` (or any mapping with ``ecg_id`` and ``filename_hr`` /
    ``filename_lr``), or an ``ecg_id``. ``source``: "500" (default: the 500 Hz file, resampled to ``rate``) or
    "100" (the official 100 Hz files; only ``rate=100``). ``source_rate`` is an alias of ``source``.
    ``on_missing="skip"`` returns None with a :class:`DataWarning` when the record's files do not exist.
    ``strict`` turns a flat lead into an error (see the module docstring).
    """
    source = _source_name(source_rate if source_rate is not None else source)
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    rate = int(rate)
    if rate <= 0:
        raise ValueError(f"rate must be a positive number of Hz, got {rate}")
    if source == "100" and rate != 100:
        raise ValueError(f"the official 100 Hz files cannot give {rate} Hz signals (500 Hz needs source='500')")
    record = f"PTB-XL ecg_id {_ecg_id(row)}"
    fs_in = int(source)
    try:
        x, _ = read_wfdb_signal(record_path(root, row, source), record, fs=fs_in, length=DURATION_S * fs_in,
                                strict=strict, checksum=checksum, on_flat=on_flat)
    except MissingRecordError as error:
        if on_missing == "error":
            raise
        warnings.warn(f"{error}; skipped", DataWarning, stacklevel=2)
        return None
    return resample(x, fs_in, rate)
