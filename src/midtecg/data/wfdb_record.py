"""The one WFDB reader: a record's signal as float32 millivolts (12, L) in WFDB lead order, validated.

PTB-XL (:mod:`midtecg.data.ptbxl`), generic WFDB folders (:mod:`midtecg.data.wfdb_folder`) and the readers of
synthetic outputs (:func:`midtecg.io.read_wfdb_record`) all call :func:`read_wfdb_signal`. Samples are read as
the digital values of the files and scaled by each lead's ADC gain and baseline, then by its unit
(``UNIT_TO_MV``), so the result is always millivolts whatever the file stores.

Validation; every problem names the record it is given (``"PTB-XL ecg_id 17: ..."``):

- missing ``.hea`` / ``.dat``: :class:`MissingRecordError` (a :class:`DataError`);
- unreadable or corrupt header, a signal file shorter than the header promises (truncated), any error of the
  ``wfdb`` reader, and per-lead **checksums** that do not match the samples (a corrupt ``.dat`` of the right
  size): :class:`DataError` ("unreadable WFDB record ...");
- not 12 channels, unexpected sampling rate or length, unknown or duplicate lead names, units not in
  ``UNIT_TO_MV`` (mV, uV, V), NaN / inf / missing samples: :class:`DataError`. Lead names are matched
  case-insensitively (``AVR`` is ``aVR``) and the leads are **reordered by name** to the WFDB order when a file
  stores them differently;
- **flat leads** (peak-to-peak below ``FLAT_TOLERANCE_MV`` = 10 uV over the whole record; the smallest in the
  1,500-record shared subset is 196 uV): a recording fault, not an impossible file, so the record is kept
  with a :class:`DataWarning` naming the record and leads; ``strict=True`` (or ``on_flat="error"``) raises.

Generic folders may also derive missing limb leads from I and II or aVF (:func:`midtecg.data.leads.limb_leads`)
and ignore channels that are not ECG leads.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import wfdb

from midtecg.data.errors import DataError, DataWarning, MissingRecordError
from midtecg.data.leads import WFDB_LEADS, canonical_lead_name, limb_leads

__all__ = ["FLAT_TOLERANCE_MV", "UNIT_TO_MV", "read_wfdb_signal"]

FLAT_TOLERANCE_MV = 0.01
# Signal units a record may declare (lower case, surrounding spaces ignored) and their factor to millivolts.
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


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
                raise DataError(
                    record,
                    f"unreadable WFDB record {path}: signal file {file.name} is truncated "
                    f"({size} bytes, the header needs {needed} for {header.sig_len} samples)",
                )


def read_wfdb_signal(
    path: str | Path,
    record: str,
    fs: int | None = None,
    length: int | None = None,
    strict: bool = False,
    *,
    min_length: int | None = None,
    checksum: bool = True,
    on_flat: str | None = None,
    derive_limb_leads: bool = False,
    allow_extra_channels: bool = False,
) -> tuple[np.ndarray, float]:
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
        raise DataError(
            record, f"unreadable WFDB record {path}: bad header ({type(error).__name__}: {error})"
        ) from None
    if getattr(header, "seg_name", None) is not None or not header.n_sig or not header.sig_name:
        raise DataError(record, f"unreadable WFDB record {path}: not a single-segment record with signals")
    record_fs = float(header.fs)
    if fs is not None and record_fs != float(fs):
        raise DataError(record, f"sampling rate is {record_fs:g} Hz, expected {float(fs):g} Hz")
    sig_len = int(header.sig_len or 0)
    if length is not None and sig_len != length:
        raise DataError(record, f"has {sig_len} samples, expected {length}")
    if min_length is not None and sig_len < min_length:
        raise DataError(
            record,
            f"has {sig_len} samples ({sig_len / record_fs:g} s), needs at least {min_length} "
            f"({min_length / record_fs:g} s)",
        )
    _check_files(path, header, record)
    try:
        rec = wfdb.rdrecord(str(path), physical=False)
        digital = np.asarray(rec.d_signal)
        if digital.shape != (sig_len, header.n_sig):
            raise ValueError(f"{digital.shape} samples instead of {(sig_len, header.n_sig)}")
        if checksum and rec.checksum is not None:
            actual = digital.astype(np.int64).sum(axis=0) % 65536
            bad = [
                str(rec.sig_name[k])
                for k, c in enumerate(rec.checksum)
                if c is not None and int(c) % 65536 != actual[k]
            ]
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
        if unit not in UNIT_TO_MV:
            raise DataError(record, f"unknown signal units {rec.units} (expected mV, uV or V)")
        leads[name] = physical[:, k] * UNIT_TO_MV[unit]
    if not derive_limb_leads and not allow_extra_channels and len(names) != 12:
        raise DataError(record, f"expected 12 leads, found {len(names)} ({', '.join(names)})")
    if extra and not allow_extra_channels:
        raise DataError(record, f"lead names {names} are not the 12 standard leads (unknown: {', '.join(extra)})")
    if (
        len(leads) < 12
        and derive_limb_leads
        and all(n in leads for n in WFDB_LEADS[6:])
        and "I" in leads
        and ("II" in leads or "aVF" in leads)
    ):
        lead_i = leads["I"]
        avf = leads["aVF"] if "aVF" in leads else leads["II"] - 0.5 * lead_i
        for name, value in {**limb_leads(lead_i, avf), "aVF": avf}.items():
            leads.setdefault(name, value)
    if len(leads) != 12:
        missing = [n for n in WFDB_LEADS if n not in leads]
        raise DataError(
            record, f"expected 12 leads, found {len(leads)} ({', '.join(names)}; missing {', '.join(missing)})"
        )
    x = np.stack([leads[name] for name in WFDB_LEADS])
    if not np.isfinite(x).all():
        bad = [
            f"{WFDB_LEADS[i]} ({int((~np.isfinite(x[i])).sum())})" for i in np.nonzero(~np.isfinite(x).all(axis=1))[0]
        ]
        raise DataError(record, f"NaN, infinite or missing samples in lead(s) {', '.join(bad)}")
    on_flat = on_flat or ("error" if strict else "warn")
    if on_flat not in ("warn", "error", "ignore"):
        raise ValueError(f"on_flat must be 'warn', 'error' or 'ignore', got {on_flat!r}")
    flat = np.ptp(x, axis=1) < FLAT_TOLERANCE_MV
    if flat.any() and on_flat != "ignore":
        problem = (
            f"flat lead(s) {', '.join(WFDB_LEADS[i] for i in np.nonzero(flat)[0])} "
            f"(peak-to-peak below {FLAT_TOLERANCE_MV * 1000:g} uV over the record)"
        )
        if on_flat == "error":
            raise DataError(record, problem)
        warnings.warn(f"{record}: {problem}; kept", DataWarning, stacklevel=2)
    return x.astype(np.float32), (int(record_fs) if record_fs.is_integer() else record_fs)
