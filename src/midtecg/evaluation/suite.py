"""The evaluation suite: every metric of ``method.md`` section 6 for one synthetic set, one JSON, one HTML.

::

    from midtecg.evaluation import evaluate, write_report

    result = evaluate(("data/ptbxl-100hz", "test"), "out/generated/ecgs.npz", out_dir="out/eval")
    result["summary"]["snr_db"], result["privacy"]["gate"]["passed"]
    write_report("out/eval/evaluation.json", "out/eval/report-again.html")  # the `midtecg report` command

Inputs (:func:`load_ecg_set` reads all of them into an :class:`ECGSet`: signals ``(N, 12, L)`` float32 mV in
WFDB lead order, a rate and one table row per record):

* **real** (the evaluated real records, normally the test fold): a prepared cache folder (split ``"test"``),
  ``(cache, split)`` with a split name or a list of folds, an object with ``.signals`` and ``.records``
  (``midtecg.data.cache.PreparedData``), or arrays: ``signals``, ``(signals, table)``,
  ``(signals, table, fs)`` or ``{"signals", "records" | "conditions", "fs"}``.
* **synth**: a ``SampledECGs`` or ``GenerationResult`` (``midtecg.generate``), a folder of WFDB records
  (conditions from a ``conditions.csv`` next to them or in the folder above, matched on its ``name``
  column, else from the records' ``key: value`` header comments), an ``.npz`` written by
  :func:`midtecg.io.save_npz`, a generation folder holding either, or the array forms above.
* **train** (the generator's training records: privacy, the embedding classifier, utility): the same
  forms; by default the train split of ``real``'s cache.
* **holdout** (real records the generator never saw, for privacy): by default ``real``. Privacy is skipped
  when the holdout shares an ``ecg_id`` with ``train``.

Pairing (paired protocol): by ``ecg_id`` when both tables carry one (a ``name`` such as ``synth_ecg00017``
written by ``midtecg generate --paired`` also gives one), else by order when the counts match; otherwise
the paired metrics are skipped and a note says why. Rates, lengths and lead counts must agree; a
mismatch raises :class:`~midtecg.data.errors.DataError` naming the sets.

Stages (each timed; ``result["timings"]`` in seconds, progress lines on stderr):

``fidelity``
    :func:`~midtecg.evaluation.fidelity.paired_fidelity` (SNR, RMSE, PRD, |r| per lead and mean),
    :func:`~midtecg.evaluation.fidelity.interlead_correlation_error` (per record mean / max and between
    mean matrices), and both broken down by diagnostic superclass of the real record.
``distributional``
    signal MMD (:func:`~midtecg.evaluation.distributional.mmd`), Welch PSD distance per lead, and the
    distance between the sets' mean inter-lead correlation matrices, each with its real-vs-real floor
    (two disjoint random halves of the real set).
``classifier`` / ``embeddings``
    an XResNet classifier trained on the real training records (71 SCP statements; cached in
    ``classifier_dir`` and reused when the data and configuration match), its pooled penultimate
    features for every set, the Frechet distance and KID between real and synthetic embeddings with
    ``n``, the real-vs-real floor and the synthetic value at the floor's ``n``.
``clinical``
    neurokit2 delineation (lead II) of both sets: interval distributions, failure rates, the heart-rate
    error where the synthetic conditions request a heart rate, paired interval differences, and
    comparisons per age bin and sex. At 100 Hz intervals are only precise to 10 ms.
``privacy``
    :func:`~midtecg.evaluation.privacy.privacy_audit` in signal space and in embedding space, and
    :func:`~midtecg.evaluation.privacy.privacy_gate` over both.
``utility`` (optional)
    :func:`~midtecg.evaluation.utility.run_utility` for the ``"all"`` and ``"superdiagnostic"`` label sets
    (TRTR, TSTR, real+synthetic, low-data curves; CUDA when available). The synthetic training records are
    ``synth`` unless ``utility_synth`` names another set: paired synthetic ECGs copy the test records'
    label sets, so for augmentation experiments generate from the training records' conditions instead.

Outputs: ``out_dir/evaluation.json`` (every number; NaN written as ``null``) and ``out_dir/report.html``
(one self-contained page). :func:`write_report` rebuilds the page from the JSON alone; only the example
ECG plots need the raw signals and are then left out (the page says so).

Speed (``benchmarks/evaluate_speed.py``, 1,000 real PTB-XL vs 1,000 synthetic records at 100 Hz, 443
training records, small classifier trained for 2 epochs, ``threads=1``, ``n_jobs=2``, on 2 CPU cores shared
with other jobs, load average 2.6-5): 185 s in all, of which delineation (``clinical``) 154 s, report 13 s,
privacy 6 s, embeddings 5 s, classifier 4 s, distributional 4 s, fidelity 0.6 s. On busy cores pass
``threads=1``: with the default two threads the classifier, embedding and privacy stages ran 5-10 times
slower (OpenBLAS and OpenMP workers spinning against other processes).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from midtecg.data.errors import DataError
from midtecg.data.leads import WFDB_LEADS, canonical_lead_name

__all__ = [
    "ECGSet",
    "load_ecg_set",
    "pair_records",
    "evaluate",
    "build_report",
    "write_report",
    "DEFAULT_LABEL_SETS",
    "DEFAULT_FRACTIONS",
]

FORMAT = "midtecg-evaluation"
FORMAT_VERSION = 1
JSON_NAME = "evaluation.json"
HTML_NAME = "report.html"
DEFAULT_LABEL_SETS = ("all", "superdiagnostic")
DEFAULT_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
DEMOGRAPHICS = ("age", "sex", "height", "weight", "heart_rate")
INTERVAL_UNITS = {"heart_rate": "bpm", "pr_ms": "ms", "qrs_ms": "ms", "qt_ms": "ms", "qtc_ms": "ms"}
INTERVAL_TITLES = {"heart_rate": "heart rate (bpm)", "pr_ms": "PR (ms)", "qrs_ms": "QRS (ms)", "qt_ms": "QT (ms)",
                   "qtc_ms": "QTc (ms)"}
_SEX = {"male": 0.0, "m": 0.0, "0": 0.0, "0.0": 0.0, "female": 1.0, "f": 1.0, "1": 1.0, "1.0": 1.0}
_ID_PATTERNS = (re.compile(r"ecg_?0*(\d+)$", re.IGNORECASE), re.compile(r"^0*(\d+)_(?:lr|hr)$"))


# =====================================================================================================
# inputs


@dataclass
class ECGSet:
    """One set of 12-lead ECGs: ``signals (N, 12, L)`` float32 mV (WFDB order), ``fs`` (Hz or None when not
    known), ``table`` (one row per record: ``ecg_id``, demographics, SCP code columns, ... as available),
    ``source`` (what it was read from) and ``split``."""

    signals: np.ndarray
    fs: float | None
    table: pd.DataFrame
    source: str
    split: Any = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    @property
    def length(self) -> int:
        return int(self.signals.shape[-1])

    def subset(self, index) -> "ECGSet":
        index = np.asarray(index, dtype=np.int64)
        return ECGSet(np.ascontiguousarray(self.signals[index]), self.fs,
                      self.table.iloc[index].reset_index(drop=True), self.source, self.split, list(self.notes))

    def ids(self) -> np.ndarray | None:
        """``ecg_id`` per record (int64), or None when the table has none for some record."""
        if "ecg_id" not in self.table.columns:
            return None
        ids = pd.to_numeric(self.table["ecg_id"], errors="coerce")
        if ids.isna().any():
            return None
        return ids.to_numpy().astype(np.int64)

    def labels71(self) -> np.ndarray | None:
        """(N, 71) multi-hot SCP statements, or None when the table does not carry them."""
        from midtecg.data.labels import SCP_CODES

        if not all(code in self.table.columns for code in SCP_CODES):
            return None
        y = self.table[list(SCP_CODES)].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(np.float32)
        return (y > 0.5).astype(np.float32)

    def column(self, name: str) -> np.ndarray | None:
        """A numeric demographic column (NaN where missing), or None when absent or all missing."""
        if name not in self.table.columns:
            return None
        values = pd.to_numeric(self.table[name], errors="coerce").to_numpy(np.float64)
        return values if np.isfinite(values).any() else None

    def describe(self) -> dict:
        return {"source": self.source, "split": self.split, "n": len(self), "fs": self.fs,
                "length": self.length, "leads": int(self.signals.shape[1]),
                "seconds": (self.length / self.fs) if self.fs else None,
                "has_ecg_id": self.ids() is not None, "has_labels": self.labels71() is not None,
                "columns": [str(c) for c in self.table.columns if str(c) not in _scp_code_set()]}


def _scp_code_set() -> set[str]:
    from midtecg.data.labels import SCP_CODES

    return set(SCP_CODES)


def _reorder_leads(signals: np.ndarray, lead_names, where: str) -> np.ndarray:
    if signals.ndim == 2:
        signals = signals[None]
    if signals.ndim != 3:
        raise DataError(where, f"expected signals (N, 12, samples), got shape {signals.shape}")
    if signals.shape[1] != len(WFDB_LEADS):
        raise DataError(where, f"expected 12 leads on axis 1, got {signals.shape[1]} (shape {signals.shape})")
    if lead_names is not None:
        names = [canonical_lead_name(str(n)) for n in lead_names]
        if len(names) != len(WFDB_LEADS) or set(names) != set(WFDB_LEADS):
            raise DataError(where, f"lead names {list(lead_names)} are not the 12 standard leads")
        if names != list(WFDB_LEADS):
            signals = signals[:, [names.index(lead) for lead in WFDB_LEADS]]
    return signals


def _to_float32(signals, where: str) -> np.ndarray:
    try:
        x = np.asarray(signals)
    except Exception as exc:  # noqa: BLE001
        raise DataError(where, f"signals cannot be read as an array ({exc})") from exc
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(where, f"signals must be numeric, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _parse_sex(value) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    return _SEX.get(str(value).strip().lower(), math.nan)


def _normalize_table(table, n: int, where: str, notes: list[str]) -> pd.DataFrame:
    """One row per record with numeric demographics, ``ecg_id`` when derivable and SCP columns when the
    labels are known (from the columns themselves or a comma-separated ``labels`` column)."""
    from midtecg.data.labels import SCP_CODES, labels_to_vector

    if table is None:
        return pd.DataFrame(index=range(n))
    if isinstance(table, dict):
        table = pd.DataFrame({k: np.asarray(v).tolist() if np.ndim(v) > 1 else v for k, v in table.items()})
    if not isinstance(table, pd.DataFrame):
        raise DataError(where, f"conditions / records must be a DataFrame, not {type(table).__name__}")
    if len(table) != n:
        raise DataError(where, f"the table has {len(table)} rows for {n} signals")
    t = table.reset_index(drop=True).copy()
    t.columns = [str(c) for c in t.columns]
    for name in DEMOGRAPHICS:
        if name in t.columns:
            text = not pd.api.types.is_numeric_dtype(t[name])  # object before pandas 3, str from pandas 3 on
            t[name] = t[name].map(_parse_sex) if name == "sex" and text else pd.to_numeric(t[name], errors="coerce")
    if "ecg_id" not in t.columns and "name" in t.columns:
        ids = []
        for name in t["name"].astype(str):
            base = Path(name).name
            match = next((m for m in (p.search(base) for p in _ID_PATTERNS) if m), None)
            ids.append(int(match.group(1)) if match else None)
        if all(i is not None for i in ids) and len(set(ids)) == len(ids):
            t["ecg_id"] = ids
    if not all(code in t.columns for code in SCP_CODES) and "labels" in t.columns:
        rows = []
        try:
            for text in t["labels"]:
                items = [] if text is None or (isinstance(text, float) and math.isnan(text)) else \
                    [s.strip() for s in str(text).split(",")]
                rows.append(labels_to_vector([s for s in items if s and s.lower() != "none"]))
        except ValueError as exc:
            notes.append(f"{where}: labels not read ({exc}); label-based breakdowns and utility are skipped")
        else:
            labels = pd.DataFrame(np.stack(rows) if rows else np.zeros((0, len(SCP_CODES))),
                                  columns=list(SCP_CODES))
            t = pd.concat([t.drop(columns=[c for c in SCP_CODES if c in t.columns]), labels], axis=1)
    return t


def _find_conditions_csv(folder: Path) -> Path | None:
    for candidate in (folder / "conditions.csv", folder.parent / "conditions.csv"):
        if candidate.is_file():
            return candidate
    return None


def _from_wfdb_folder(folder: Path, role: str, notes: list[str]) -> tuple[np.ndarray, float, pd.DataFrame]:
    import wfdb

    from midtecg.io import read_wfdb_folder

    signals, names, comments = read_wfdb_folder(folder, typed=True)
    first = next(p for p in sorted(folder.glob("**/*.hea")) if not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    fs = float(wfdb.rdheader(str(first.with_suffix(""))).fs)
    base_names = [Path(n).name for n in names]
    csv = _find_conditions_csv(folder)
    table = None
    if csv is not None:
        frame = pd.read_csv(csv)
        if "name" in frame.columns:
            frame["name"] = frame["name"].astype(str)
            lookup = {name: i for i, name in enumerate(frame["name"])}
            missing = [n for n in base_names if n not in lookup]
            if not missing:
                table = frame.iloc[[lookup[n] for n in base_names]].reset_index(drop=True)
            else:
                notes.append(f"{role}: {csv} has no row for {len(missing)} record(s) (e.g. {missing[0]}); "
                             "conditions taken from the header comments")
        elif len(frame) == len(base_names):
            table = frame
            notes.append(f"{role}: {csv} has no name column; rows matched to the records by sorted name")
        else:
            notes.append(f"{role}: {csv} has {len(frame)} rows for {len(base_names)} records and no name "
                         "column; conditions taken from the header comments")
        if table is not None:
            notes.append(f"{role}: conditions read from {csv}")
    if table is None:
        table = pd.DataFrame([{k: v for k, v in c.items() if k != "_text"} for c in comments])
        if "name" not in table.columns:
            table.insert(0, "name", base_names)
    return signals, fs, table


def _from_path(path, role: str, split, notes: list[str]) -> tuple:
    """-> (signals, fs, table, source, split, lead_names)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{role}: {p} does not exist")
    if p.is_dir() and (p / "manifest.json").is_file():
        from midtecg.data.cache import load_prepared

        split = "test" if split is None else split
        data = load_prepared(p, split=split)
        manifest = dict(getattr(data, "manifest", {}) or {})
        fs = manifest.get("rate", manifest.get("fs"))
        return data.signals, (float(fs) if fs else None), data.records, f"cache {p}", split, None
    if split is not None:
        raise DataError(role, f"a split ({split!r}) was given but {p} is not a prepared cache (no manifest.json)")
    if p.is_file() and p.suffix == ".npz":
        from midtecg.io import load_npz

        loaded = load_npz(p)
        table = loaded.conditions
        if isinstance(table, dict):
            table = pd.DataFrame({k: list(v) if np.ndim(v) > 1 else v for k, v in table.items()})
        return loaded.signals, float(loaded.fs), table, f"npz {p}", None, loaded.lead_names
    if p.is_dir():
        headers = [h for h in p.glob("**/*.hea") if not any(part.startswith(".") for part in h.relative_to(p).parts)]
        if headers:
            signals, fs, table = _from_wfdb_folder(p, role, notes)
            return signals, fs, table, f"WFDB folder {p}", None, None
        npz = sorted(p.glob("*.npz"))
        if len(npz) == 1:
            return _from_path(npz[0], role, None, notes)
        raise DataError(role, f"{p} holds no WFDB record (.hea), no single .npz and no prepared cache")
    raise DataError(role, f"{p}: expected a prepared cache folder, a WFDB folder or an .npz file")


def load_ecg_set(source, *, role: str = "ECGs", split=None, fs: float | None = None,
                 notes: list[str] | None = None) -> ECGSet:
    """Read any accepted input (see the module docstring) into an :class:`ECGSet`.

    ``split`` applies to a prepared cache given as a bare path; ``fs`` is the rate of arrays that carry
    none (a set that does carry one must agree with it).
    """
    shared = [] if notes is None else notes
    notes: list[str] = []
    if isinstance(source, ECGSet):
        return source
    lead_names = None
    table = None
    rate = None
    origin = "arrays"
    if hasattr(source, "ecgs") and hasattr(getattr(source, "ecgs"), "signals"):  # GenerationResult
        source = source.ecgs
    if isinstance(source, (str, os.PathLike)):
        signals, rate, table, origin, split, lead_names = _from_path(source, role, split, notes)
    elif isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], (str, os.PathLike)):
        signals, rate, table, origin, split, lead_names = _from_path(source[0], role, source[1], notes)
    elif isinstance(source, tuple):
        if not 1 <= len(source) <= 3:
            raise DataError(role, "expected (signals, table) or (signals, table, fs)")
        signals = source[0]
        table = source[1] if len(source) > 1 else None
        rate = source[2] if len(source) > 2 else None
    elif isinstance(source, dict):
        if "signals" not in source:
            raise DataError(role, "a dict input needs a 'signals' entry")
        signals = source["signals"]
        table = source.get("records", source.get("conditions"))
        rate = source.get("fs")
        lead_names = source.get("lead_names")
    elif hasattr(source, "signals"):
        signals = source.signals
        table = getattr(source, "records", None)
        if table is None:
            table = getattr(source, "conditions", None)
        rate = getattr(source, "fs", None)
        if rate is None:
            manifest = getattr(source, "manifest", None) or {}
            rate = manifest.get("rate", manifest.get("fs")) if isinstance(manifest, dict) else None
        lead_names = getattr(source, "lead_names", None)
        origin = type(source).__name__
    elif isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        signals = source
    elif source is None:
        raise DataError(role, "no input given")
    else:
        raise DataError(role, f"cannot read ECGs from a {type(source).__name__}")
    x = _reorder_leads(_to_float32(signals, role), lead_names, role)
    if x.shape[0] == 0:
        raise DataError(role, "no records")
    if rate is not None:
        rate = float(rate)
        if not rate > 0:
            raise DataError(role, f"sampling rate must be positive, got {rate}")
        if fs is not None and not math.isclose(rate, float(fs)):
            raise DataError(role, f"sampled at {rate:g} Hz but fs={float(fs):g} Hz was requested (no resampling)")
    elif fs is not None:
        rate = float(fs)
    t = _normalize_table(table, x.shape[0], role, notes)
    shared.extend(notes)
    return ECGSet(x, rate, t, origin, split, notes)


def _default_train(real_source):
    """``(cache, "train")`` when ``real`` names a prepared cache, else None."""
    path = None
    if isinstance(real_source, (str, os.PathLike)):
        path = real_source
    elif isinstance(real_source, tuple) and len(real_source) == 2 and isinstance(real_source[0], (str, os.PathLike)):
        path = real_source[0]
    elif hasattr(real_source, "path") and hasattr(real_source, "records"):
        path = getattr(real_source, "path")
    if path is not None and (Path(path) / "manifest.json").is_file():
        return (path, "train")
    return None


def _check_compatible(reference: ECGSet, other: ECGSet, what: str) -> None:
    if reference.fs is not None and other.fs is not None and not math.isclose(reference.fs, other.fs):
        raise DataError(what, f"sampled at {other.fs:g} Hz but the real ECGs at {reference.fs:g} Hz; "
                        "generate or prepare both at one rate (no resampling here)")
    if other.length != reference.length:
        raise DataError(what, f"{other.length} samples per record but the real ECGs have {reference.length}; "
                        "all sets need the same length")
    if other.signals.shape[1] != reference.signals.shape[1]:
        raise DataError(what, f"{other.signals.shape[1]} leads but the real ECGs have {reference.signals.shape[1]}")


def pair_records(real: ECGSet, synth: ECGSet) -> dict:
    """Match synthetic to real records: by ``ecg_id`` when both sets carry it, else by order when the
    counts match. Returns ``{"method": "ecg_id" | "order" | None, "real_index", "synth_index", "n_pairs",
    "reason"}`` (indices as int64 arrays; empty when unpaired)."""
    empty = np.zeros(0, dtype=np.int64)
    rid, sid = real.ids(), synth.ids()
    if rid is not None and sid is not None:
        if len(np.unique(rid)) != len(rid):
            return {"method": None, "real_index": empty, "synth_index": empty, "n_pairs": 0,
                    "reason": "the real ecg_ids are not unique"}
        lookup = {int(v): i for i, v in enumerate(rid)}
        si = np.array([j for j, v in enumerate(sid) if int(v) in lookup], dtype=np.int64)
        if si.size == 0:
            return {"method": None, "real_index": empty, "synth_index": empty, "n_pairs": 0,
                    "reason": "no synthetic ecg_id matches a real record (another split?)"}
        ri = np.array([lookup[int(sid[j])] for j in si], dtype=np.int64)
        reason = "" if si.size == len(synth) else f"{len(synth) - si.size} synthetic record(s) have no real partner"
        return {"method": "ecg_id", "real_index": ri, "synth_index": si, "n_pairs": int(si.size), "reason": reason}
    if len(real) == len(synth):
        return {"method": "order", "real_index": np.arange(len(real)), "synth_index": np.arange(len(synth)),
                "n_pairs": len(real), "reason": "no ecg_id on both sides: paired by order"}
    return {"method": None, "real_index": empty, "synth_index": empty, "n_pairs": 0,
            "reason": f"no ecg_id on both sides and the counts differ ({len(real)} real, {len(synth)} synthetic)"}


# =====================================================================================================
# helpers


class _Stages:
    def __init__(self, progress: bool, on_error: str, notes: list[str]):
        self.progress = progress
        self.on_error = on_error
        self.notes = notes
        self.timings: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.t0 = time.perf_counter()

    def log(self, text: str) -> None:
        if self.progress:
            print(f"[midtecg evaluate] {text}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def __call__(self, name: str, catch: bool = True):
        self.log(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - recorded, the other stages still run
            seconds = time.perf_counter() - start
            self.timings[name] = round(seconds, 3)
            if self.on_error == "raise" or not catch:
                raise
            message = f"{type(exc).__name__}: {exc}"
            self.errors[name] = message + "\n" + "".join(traceback.format_exc(limit=6))
            self.log(f"{name} FAILED after {seconds:.1f} s: {message}")
        else:
            seconds = time.perf_counter() - start
            self.timings[name] = round(seconds, 3)
            self.log(f"{name} done in {seconds:.1f} s")


def _superclass_labels(labels71: np.ndarray | None) -> np.ndarray | None:
    if labels71 is None:
        return None
    from midtecg.data.labels import aggregate_labels

    return aggregate_labels(labels71, "superdiagnostic")


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2: 2 * (n // 2)])


def _finite(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _get(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _default_classifier_config():
    from midtecg.evaluation.utility import ClassifierTrainConfig

    return ClassifierTrainConfig()


# =====================================================================================================
# stages


def _fidelity_stage(real: ECGSet, synth: ECGSet, pairing: dict) -> dict:
    from midtecg.data.labels import SUPERCLASSES
    from midtecg.evaluation.fidelity import breakdown, interlead_correlation_error, paired_fidelity

    ri, si = pairing["real_index"], pairing["synth_index"]
    rp, sp = real.signals[ri], synth.signals[si]
    fid = paired_fidelity(rp, sp)
    inter = interlead_correlation_error(rp, sp)
    out = {k: v for k, v in fid.items()}
    out["interlead"] = inter
    ids = real.ids()
    out["record_ids"] = ids[ri] if ids is not None else ri
    sup = _superclass_labels(real.labels71())
    if sup is not None:
        values = {**fid["per_record"], "interlead_mean": inter["per_record_mean"],
                  "interlead_max": inter["per_record_max"]}
        out["breakdown"] = breakdown(values, sup[ri], class_names=list(SUPERCLASSES))
        out["breakdown_by"] = "diagnostic superclass of the real record (a record counts in each of its classes)"
    return out


def _distributional_stage(real: ECGSet, synth: ECGSet, fs: float, seed: int, notes: list[str]) -> dict:
    from midtecg.evaluation.distributional import mmd, real_floor, welch_psd_distance
    from midtecg.evaluation.fidelity import mean_correlation_matrix_error

    out: dict = {}
    enough = len(real) >= 4
    if not enough:
        notes.append(f"distributional: {len(real)} real record(s) cannot be split in halves; no real-vs-real floors")
    m = mmd(real.signals, synth.signals, rng=seed)
    if enough:
        m["floor"] = real_floor(partial(mmd, rng=seed), real.signals, rng=seed)
    out["mmd"] = m
    psd = welch_psd_distance(real.signals, synth.signals, fs=fs)
    if enough:
        fl = real_floor(partial(welch_psd_distance, fs=fs), real.signals, rng=seed)
        psd["floor"] = {"per_lead": fl["per_lead"], "mean": fl["mean"], "max": fl["max"], "n_real": fl["n_real"],
                        "n_synth": fl["n_synth"]}
    out["welch_psd"] = psd
    corr = mean_correlation_matrix_error(real.signals, synth.signals)
    if enough:
        fl = real_floor(mean_correlation_matrix_error, real.signals, rng=seed)
        corr["floor"] = {"mean_abs_error": fl["mean_abs_error"], "max_abs_error": fl["max_abs_error"],
                         "max_pair": fl["max_pair"], "n": len(real) // 2}
    out["correlation_between_means"] = corr
    return out


def _single_blas_thread():
    """One BLAS thread for LAPACK-heavy steps. Once torch has run, its OpenMP workers keep spinning and a
    multi-threaded OpenBLAS ``eigh`` of a 512 x 512 covariance slows from 0.05 s to about 7 s on 2 busy cores
    (measured); one thread avoids the fight."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _embedding_distances(emb_r: np.ndarray, emb_s: np.ndarray, seed: int) -> dict:
    with _single_blas_thread():
        return _embedding_distances_impl(emb_r, emb_s, seed)


def _embedding_distances_impl(emb_r: np.ndarray, emb_s: np.ndarray, seed: int) -> dict:
    from midtecg.evaluation.distributional import frechet_distance, kid

    rng = np.random.default_rng(seed)
    fd = {"value": frechet_distance(emb_r, emb_s), "n_real": int(len(emb_r)), "n_synth": int(len(emb_s)),
          "dim": int(emb_r.shape[1])}
    k = kid(emb_r, emb_s, rng=seed)
    if len(emb_r) >= 4:
        a, b = _halves(len(emb_r), rng)
        n_half = len(a)
        pick = np.sort(rng.choice(len(emb_s), min(n_half, len(emb_s)), replace=False))
        fd.update(floor=frechet_distance(emb_r[a], emb_r[b]), n_floor=int(n_half),
                  value_at_floor_n=frechet_distance(emb_r[a], emb_s[pick]) if len(pick) >= 2 else math.nan)
        kf = kid(emb_r[a], emb_r[b], rng=seed)
        k.update(floor=kf["kid"], floor_std=kf["kid_std"], n_floor=int(n_half))
    else:
        fd.update(floor=math.nan, n_floor=0, value_at_floor_n=math.nan)
        k.update(floor=math.nan, floor_std=math.nan, n_floor=0)
    fd["note"] = ("Frechet distance on classifier embeddings; biased upwards at small n: compare value_at_floor_n "
                  "with floor (two disjoint halves of the real set, same n)")
    return {"frechet": fd, "kid": k}


def _clinical_stage(real: ECGSet, synth: ECGSet, pairing: dict, fs: float, n_jobs: int) -> dict:
    from midtecg.evaluation.clinical import (
        INTERVALS,
        age_bins,
        compare_by_group,
        compare_intervals,
        delineate,
        heart_rate_error,
        interval_stats,
        interval_stats_by_group,
        sex_groups,
    )

    dr = delineate(real.signals, fs, n_jobs=n_jobs)
    ds = delineate(synth.signals, fs, n_jobs=n_jobs)
    out: dict = {
        "lead": dr["lead"], "resolution_ms": dr["resolution_ms"], "note": dr["note"],
        "precision_note": (f"At {fs:g} Hz interval boundaries are sample indices: intervals are only precise to "
                           f"{1000.0 / fs:g} ms, so differences between the sets below about {1000.0 / fs:g} ms "
                           "are not meaningful."),
        "comparison": compare_intervals(dr, ds),
        "real_stats": interval_stats(dr),
        "synth_stats": interval_stats(ds),
        "per_record": {
            "real": {**{k: dr[k] for k in INTERVALS}, "failed": dr["failed"]},
            "synth": {**{k: ds[k] for k in INTERVALS}, "failed": ds["failed"]},
        },
        "errors_real": sorted({e for e in dr["errors"] if e})[:20],
        "errors_synth": sorted({e for e in ds["errors"] if e})[:20],
    }
    requested = synth.column("heart_rate")
    if requested is not None:
        out["heart_rate_error"] = heart_rate_error(requested, ds)
        out["heart_rate_error"]["what"] = "measured heart rate of the synthetic ECGs minus the requested one (bpm)"
    reference = real.column("heart_rate")
    if reference is not None:
        out["heart_rate_error_real"] = heart_rate_error(reference, dr)
        out["heart_rate_error_real"]["what"] = ("measured heart rate of the real ECGs minus the cache's heart_rate: "
                                                "the measurement floor of heart_rate_error")
    ri, si = pairing["real_index"], pairing["synth_index"]
    if len(ri):
        paired = {}
        for k in INTERVALS:
            d = ds[k][si] - dr[k][ri]
            d = d[np.isfinite(d)]
            paired[k] = {"mae": float(np.abs(d).mean()) if d.size else math.nan,
                         "bias": float(d.mean()) if d.size else math.nan,
                         "median_abs": float(np.median(np.abs(d))) if d.size else math.nan, "n": int(d.size)}
        out["paired_differences"] = paired
    groups: dict = {}
    for name, fn, column in (("age", age_bins, "age"), ("sex", sex_groups, "sex")):
        g_real = real.column(column)
        g_synth = synth.column(column)
        source = "synthetic conditions"
        if g_synth is None and len(ri) and len(si) == len(synth) and g_real is not None:
            g_synth = np.full(len(synth), np.nan)
            g_synth[si] = g_real[ri]
            source = "paired real records"
        if g_real is None or g_synth is None:
            continue
        groups[name] = {
            "synth_groups_from": source,
            "comparison": compare_by_group(dr, fn(g_real), ds, fn(g_synth)),
            "real_stats": interval_stats_by_group(dr, fn(g_real)),
            "synth_stats": interval_stats_by_group(ds, fn(g_synth)),
        }
    out["groups"] = groups
    return out


def _utility_stage(train: ECGSet, synth: ECGSet, real: ECGSet, config, fractions, label_sets, progress: bool) -> dict:
    from midtecg.data.labels import aggregate_labels, label_set_codes
    from midtecg.evaluation.utility import run_utility

    yt, ys, yr = train.labels71(), synth.labels71(), real.labels71()
    out = {}
    for name in label_sets:
        out[name] = run_utility(
            train.signals, aggregate_labels(yt, name), synth.signals, aggregate_labels(ys, name), real.signals,
            aggregate_labels(yr, name), fractions=fractions, config=config, label_set_name=name,
            class_names=list(label_set_codes(name)), progress=progress)
    return out


# =====================================================================================================
# summary


def _summary(result: dict) -> dict:
    """Headline numbers (flat, JSON-ready) for the summary table."""
    s: dict[str, Any] = {"n_real": _get(result, "inputs", "real", "n"), "n_synth": _get(result, "inputs", "synth", "n"),
                         "pairing": _get(result, "pairing", "method") or "unpaired",
                         "n_pairs": _get(result, "pairing", "n_pairs", default=0)}
    fid = result.get("fidelity")
    if isinstance(fid, dict) and "summary" in fid:
        for k in ("snr_db", "rmse", "prd", "abs_r"):
            s[k] = fid["summary"].get(k)
        s["interlead_error_mean"] = _get(fid, "interlead", "mean_abs_error")
        s["interlead_error_max"] = _get(fid, "interlead", "max_abs_error")
        s["interlead_error_between_means"] = _get(fid, "interlead", "between_means", "mean_abs_error")
    dist = result.get("distributional") or {}
    if "mmd" in dist:
        s["mmd2"] = _get(dist, "mmd", "mmd2")
        s["mmd2_floor"] = _get(dist, "mmd", "floor", "mmd2")
        s["psd_distance_db"] = _get(dist, "welch_psd", "mean")
        s["psd_distance_floor_db"] = _get(dist, "welch_psd", "floor", "mean")
        s["corr_matrix_error"] = _get(dist, "correlation_between_means", "mean_abs_error")
        s["corr_matrix_error_floor"] = _get(dist, "correlation_between_means", "floor", "mean_abs_error")
    emb = dist.get("embedding") if isinstance(dist, dict) else None
    if isinstance(emb, dict) and "frechet" in emb:
        s["frechet"] = _get(emb, "frechet", "value")
        s["frechet_at_floor_n"] = _get(emb, "frechet", "value_at_floor_n")
        s["frechet_floor"] = _get(emb, "frechet", "floor")
        s["kid"] = _get(emb, "kid", "kid")
        s["kid_floor"] = _get(emb, "kid", "floor")
    clin = result.get("clinical")
    if isinstance(clin, dict) and "comparison" in clin:
        s["delineation_failure_real"] = _get(clin, "comparison", "failure_rate_real")
        s["delineation_failure_synth"] = _get(clin, "comparison", "failure_rate_synth")
        for k in ("heart_rate", "qrs_ms", "qtc_ms"):
            s[f"{k}_wasserstein"] = _get(clin, "comparison", "intervals", k, "wasserstein")
        if "heart_rate_error" in clin:
            s["heart_rate_mae_bpm"] = _get(clin, "heart_rate_error", "mae")
    priv = result.get("privacy")
    if isinstance(priv, dict) and "gate" in priv:
        s["privacy_gate"] = "pass" if _get(priv, "gate", "passed") else "FAIL"
        s["mia_distance_auc"] = _get(priv, "signal", "mia_distance_auc")
        s["nnaa_train"] = _get(priv, "signal", "nnaa_train")
        s["near_copy_excess"] = _get(priv, "signal", "near_copy_excess")
    util = result.get("utility")
    if isinstance(util, dict):
        for name, u in util.items():
            if isinstance(u, dict) and "experiments" in u:
                for exp in ("TRTR", "TSTR", "TRTR+synth"):
                    s[f"auc_{name}_{exp}"] = _get(u, "experiments", exp, "macro_auc")
    return s


# =====================================================================================================
# the API


def evaluate(
    real,
    synth,
    *,
    train=None,
    holdout=None,
    out_dir: str | os.PathLike | None = None,
    fs: float | None = None,
    paired: bool = True,
    embeddings: bool = True,
    utility: bool = False,
    clinical: bool = True,
    privacy: bool = True,
    classifier_dir: str | os.PathLike | None = None,
    classifier_config=None,
    utility_config=None,
    utility_synth=None,
    utility_fractions: Sequence[float] = DEFAULT_FRACTIONS,
    utility_label_sets: Sequence[str] = DEFAULT_LABEL_SETS,
    limit: int | None = None,
    n_examples: int = 4,
    seed: int = 0,
    progress: bool = True,
    n_jobs: int = 1,
    threads: int | None = None,
    title: str | None = None,
    on_error: str = "record",
) -> dict:
    """Evaluate synthetic ECGs against real ones; see the module docstring for inputs, stages and outputs.

    Parameters
    ----------
    real, synth, train, holdout : see the module docstring (``train`` defaults to the train split of
        ``real``'s cache; ``holdout`` to ``real``).
    out_dir : folder for ``evaluation.json`` and ``report.html`` (nothing written when None).
    fs : sampling rate of array inputs that carry none (default: the real set's, else 100 Hz).
    paired, embeddings, utility, clinical, privacy : switch stages on or off.
    classifier_dir : where the embedding classifier is cached (default ``out_dir/classifier``; point several
        evaluations at one folder to train it once). Without training data a classifier found there is used.
    classifier_config : :class:`~midtecg.evaluation.utility.ClassifierTrainConfig` of the embedding classifier
        (default: the small XResNet, 50 epochs; use fewer epochs for quick checks).
    utility_config, utility_fractions, utility_label_sets : passed to ``run_utility`` (default config:
        ``ClassifierTrainConfig()``; CUDA when available).
    utility_synth : the synthetic records the utility classifiers train on (any form ``synth`` takes, with
        SCP labels); default ``synth``.
    limit : evaluate only the first ``limit`` real records (and their synthetic partners).
    n_examples : paired real-vs-synthetic 12-lead plots in the report.
    seed : every random choice (floors' halves, subsets, attacks' splits).
    n_jobs : worker processes for the delineation.
    threads : torch and BLAS threads during the evaluation (restored afterwards); None leaves them alone. On
        a machine whose cores are busy with other work, 1 is much faster: on 2 shared cores, training the
        small classifier ran at 800 samples/s with 1 thread against 140 with 2, and a privacy audit of
        100 vs 443 records took 0.7 s with one BLAS thread against 6.6 s with two.
    on_error : ``"record"`` (a failing stage is noted in the JSON and the report, the others still run) or
        ``"raise"``.

    Returns the JSON-ready result dict (the content of ``evaluation.json``).
    """
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    with _thread_limits(threads):
        return _evaluate(
            real, synth, train=train, holdout=holdout, out_dir=out_dir, fs=fs, paired=paired, embeddings=embeddings,
            utility=utility, clinical=clinical, privacy=privacy, classifier_dir=classifier_dir,
            classifier_config=classifier_config, utility_config=utility_config, utility_synth=utility_synth,
            utility_fractions=utility_fractions,
            utility_label_sets=utility_label_sets, limit=limit, n_examples=n_examples, seed=seed, progress=progress,
            n_jobs=n_jobs, threads=threads, title=title, on_error=on_error)


@contextlib.contextmanager
def _thread_limits(threads: int | None):
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads)):
            yield
    finally:
        torch.set_num_threads(before)


def _evaluate(real, synth, *, train, holdout, out_dir, fs, paired, embeddings, utility, clinical, privacy,
              classifier_dir, classifier_config, utility_config, utility_synth, utility_fractions, utility_label_sets, limit,
              n_examples, seed, progress, n_jobs, threads, title, on_error) -> dict:
    started = _dt.datetime.now().astimezone().replace(microsecond=0)
    notes: list[str] = []
    stages = _Stages(progress, on_error, notes)
    result: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "created": started.isoformat()}
    try:
        from midtecg import __version__ as version
    except ImportError:  # pragma: no cover
        version = "unknown"
    result["midtecg_version"] = version

    # ------------------------------------------------------------------ inputs
    with stages("load", catch=False):  # bad inputs always raise
        if synth is None:
            raise DataError("synth", "no synthetic ECGs given")
        if real is None:
            raise DataError("real", "no real ECGs given")
        train_source = train if train is not None else _default_train(real)
        real_set = load_ecg_set(real, role="real", fs=fs, notes=notes)
        rate = real_set.fs if real_set.fs is not None else fs
        synth_set = load_ecg_set(synth, role="synth", notes=notes)
        if rate is None:
            rate = synth_set.fs
        if rate is None:
            rate = 100.0
            notes.append("no sampling rate given with the arrays: assumed 100 Hz")
        real_set.fs = real_set.fs or rate
        synth_set.fs = synth_set.fs or rate
        _check_compatible(real_set, synth_set, "synth")
        train_set = None
        if train_source is not None:
            train_set = load_ecg_set(train_source, role="train", notes=notes)
            train_set.fs = train_set.fs or rate
            _check_compatible(real_set, train_set, "train")
        holdout_set = real_set
        if holdout is not None:
            holdout_set = load_ecg_set(holdout, role="holdout", notes=notes)
            holdout_set.fs = holdout_set.fs or rate
            _check_compatible(real_set, holdout_set, "holdout")
        utility_set = synth_set
        if utility and utility_synth is not None:
            utility_set = load_ecg_set(utility_synth, role="utility synth", notes=notes)
            utility_set.fs = utility_set.fs or rate
            _check_compatible(real_set, utility_set, "utility synth")
        pairing = pair_records(real_set, synth_set)
        if limit is not None:
            if limit < 1:
                raise DataError("limit", f"must be at least 1, got {limit}")
            keep_real = np.arange(min(limit, len(real_set)))
            if pairing["method"] == "ecg_id":
                keep_synth = np.sort(pairing["synth_index"][np.isin(pairing["real_index"], keep_real)])
            else:
                keep_synth = np.arange(min(limit, len(synth_set)))
            if len(keep_synth) < len(synth_set) or len(keep_real) < len(real_set):
                notes.append(f"limited to the first {len(keep_real)} real record(s) and {len(keep_synth)} "
                             "synthetic one(s)")
            real_set = real_set.subset(keep_real)
            synth_set = synth_set.subset(keep_synth)
            if holdout is None:
                holdout_set = real_set
            pairing = pair_records(real_set, synth_set)
    fs = float(real_set.fs)
    if pairing["reason"]:
        notes.append(f"pairing: {pairing['reason']}")
    if not paired:
        notes.append("paired metrics switched off (paired=False)")
    elif pairing["method"] is None:
        notes.append("paired metrics skipped: synthetic records could not be matched to real ones")
    result["inputs"] = {"real": real_set.describe(), "synth": synth_set.describe(),
                        "train": train_set.describe() if train_set is not None else None,
                        "holdout": holdout_set.describe() if holdout is not None else "real",
                        "utility_synth": utility_set.describe() if utility_synth is not None else "synth"}
    result["pairing"] = {"method": pairing["method"], "n_pairs": pairing["n_pairs"], "reason": pairing["reason"],
                         "synth_index": pairing["synth_index"], "real_index": pairing["real_index"]}
    result["settings"] = {"fs": fs, "paired": paired, "embeddings": embeddings, "utility": utility,
                          "clinical": clinical, "privacy": privacy, "seed": seed, "n_jobs": n_jobs,
                          "threads": threads, "limit": limit,
                          "classifier_dir": str(classifier_dir) if classifier_dir is not None else None}
    do_paired = paired and pairing["method"] is not None

    # ------------------------------------------------------------------ fidelity
    examples: list[dict] = []
    if do_paired:
        with stages("fidelity"):
            result["fidelity"] = _fidelity_stage(real_set, synth_set, pairing)
            examples = _pick_examples(real_set, synth_set, pairing, result["fidelity"], n_examples, seed)

    # ------------------------------------------------------------------ distributional (signals)
    with stages("distributional"):
        result["distributional"] = _distributional_stage(real_set, synth_set, fs, seed, notes)

    # ------------------------------------------------------------------ embeddings
    emb: dict[str, np.ndarray] = {}
    if embeddings:
        model = None
        if classifier_dir is None and out_dir is not None:
            classifier_dir = Path(out_dir) / "classifier"
            result["settings"]["classifier_dir"] = str(classifier_dir)
        cfg = classifier_config or _default_classifier_config()
        with stages("classifier"):
            model, info = _embedding_classifier(train_set, classifier_dir, cfg, progress, notes)
            result.setdefault("distributional", {})["classifier"] = info
        if model is not None:
            with stages("embeddings"):
                from midtecg.evaluation.embeddings import embed_signals

                emb["real"] = embed_signals(model, real_set.signals)
                emb["synth"] = embed_signals(model, synth_set.signals)
                if privacy and train_set is not None:
                    emb["train"] = embed_signals(model, train_set.signals)
                    emb["holdout"] = (emb["real"] if holdout_set is real_set
                                      else embed_signals(model, holdout_set.signals))
                result.setdefault("distributional", {})["embedding"] = _embedding_distances(
                    emb["real"], emb["synth"], seed)
    else:
        notes.append("embedding metrics switched off (embeddings=False)")

    # ------------------------------------------------------------------ clinical
    if clinical:
        with stages("clinical"):
            result["clinical"] = _clinical_stage(real_set, synth_set, pairing if do_paired else
                                                 {"real_index": [], "synth_index": []}, fs, n_jobs)

    # ------------------------------------------------------------------ privacy
    if privacy:
        reason = _privacy_blocker(train_set, holdout_set, synth_set)
        if reason:
            notes.append(f"privacy skipped: {reason}")
            result["privacy"] = {"skipped": reason}
        else:
            with stages("privacy"):
                from midtecg.evaluation.privacy import privacy_audit, privacy_gate

                audits = {"signal": privacy_audit(train_set.signals, holdout_set.signals, synth_set.signals, rng=seed)}
                if "train" in emb:
                    audits["embedding"] = privacy_audit(emb["train"], emb["holdout"], emb["synth"], rng=seed)
                else:
                    notes.append("privacy: no embeddings, audited in signal space only")
                result["privacy"] = {**audits, "gate": privacy_gate(audits),
                                     "holdout": "real" if holdout is None else "holdout"}
                n_small = min(len(holdout_set), len(synth_set), len(train_set))
                if n_small < 200:
                    notes.append(f"privacy: the gate's thresholds are sized for sets of a few hundred records or more; "
                                 f"with {n_small} records in the smallest set its checks are noisy")

    # ------------------------------------------------------------------ utility
    if utility:
        missing = [name for name, s in (("train", train_set), ("synth", utility_set), ("real", real_set))
                   if s is None or s.labels71() is None]
        if missing:
            reason = f"no SCP labels for: {', '.join(missing)}"
            notes.append(f"utility skipped: {reason}")
            result["utility"] = {"skipped": reason}
        else:
            with stages("utility"):
                result["utility"] = _utility_stage(train_set, utility_set, real_set, utility_config,
                                                   utility_fractions, utility_label_sets, progress)

    # ------------------------------------------------------------------ outputs
    from midtecg.evaluation.report import to_jsonable, write_json

    result["notes"] = notes
    result["errors"] = stages.errors
    result["summary"] = _summary(result)
    result["timings"] = dict(stages.timings)
    plain = to_jsonable(result)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with stages("report"):
            report = build_report(plain, examples=examples, title=title)
        plain["timings"] = dict(stages.timings)
        plain["timings"]["total"] = round(time.perf_counter() - stages.t0, 3)
        _add_timings(report, plain["timings"])
        report.write_html(out / HTML_NAME)
        write_json(out / JSON_NAME, plain)
        stages.log(f"wrote {out / JSON_NAME} and {out / HTML_NAME}")
    else:
        plain["timings"]["total"] = round(time.perf_counter() - stages.t0, 3)
    stages.log(f"total {plain['timings']['total']:.1f} s")
    return plain


def _embedding_classifier(train_set: ECGSet | None, classifier_dir, cfg, progress: bool, notes: list[str]):
    from midtecg.data.labels import SCP_CODES
    from midtecg.evaluation.embeddings import embedding_model, load_classifier
    from midtecg.evaluation.utility import resolve_device

    info: dict[str, Any] = {"config": cfg.to_dict(), "cache_dir": str(classifier_dir) if classifier_dir else None}
    labels = train_set.labels71() if train_set is not None else None
    if train_set is not None and labels is not None:
        cached = classifier_dir is not None and (Path(classifier_dir) / "classifier.json").is_file()
        t0 = time.perf_counter()
        model = embedding_model(train_set.signals, labels, cache_dir=classifier_dir, config=cfg, progress=progress,
                                label_names=list(SCP_CODES))
        info.update(source="trained on the real training records (71 SCP statements)", n_train=len(train_set),
                    seconds=round(time.perf_counter() - t0, 3), cache_checked=cached)
    elif classifier_dir is not None and (Path(classifier_dir) / "classifier.json").is_file():
        model = load_classifier(classifier_dir, device=resolve_device(cfg.device))
        info.update(source=f"loaded from {classifier_dir} (no training records given to check it against)")
        notes.append(f"embeddings: classifier loaded from {classifier_dir} without training data to verify it")
    else:
        why = "no training records" if train_set is None else "the training records carry no SCP labels"
        notes.append(f"embedding metrics skipped: {why} and no cached classifier")
        info["skipped"] = why
        return None, info
    info.update(model=model.net_config.to_dict(), embedding_dim=int(model.embedding_dim),
                history=getattr(model, "history", []))
    return model, info


def _privacy_blocker(train_set: ECGSet | None, holdout_set: ECGSet, synth_set: ECGSet) -> str:
    if train_set is None:
        return "no training records (pass train=...)"
    for name, s in (("train", train_set), ("holdout", holdout_set), ("synth", synth_set)):
        if len(s) < 3:
            return f"{name} has {len(s)} record(s); the audit needs at least 3"
    a, b = train_set.ids(), holdout_set.ids()
    if a is not None and b is not None:
        overlap = np.intersect1d(a, b)
        if overlap.size:
            return (f"the holdout shares {overlap.size} ecg_id(s) with the training set (e.g. {int(overlap[0])}); "
                    "pass holdout=... with records the generator never saw")
    return ""


def _pick_examples(real: ECGSet, synth: ECGSet, pairing: dict, fid: dict, n: int, seed: int) -> list[dict]:
    """A few paired examples: one per diagnostic superclass present where possible, else random."""
    from midtecg.data.labels import SUPERCLASSES

    ri, si = pairing["real_index"], pairing["synth_index"]
    if n <= 0 or len(ri) == 0:
        return []
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    sup = _superclass_labels(real.labels71())
    if sup is not None:
        for j, _ in enumerate(SUPERCLASSES):
            members = [k for k in np.flatnonzero(sup[ri, j] > 0.5) if k not in chosen]
            if members and len(chosen) < n:
                chosen.append(int(rng.choice(members)))
    rest = [k for k in rng.permutation(len(ri)) if k not in chosen]
    chosen += [int(k) for k in rest[: max(0, n - len(chosen))]]
    ids = real.ids()
    out = []
    for k in chosen:
        rid = f"ecg_id {ids[ri[k]]}" if ids is not None else f"real #{ri[k]}"
        labels = ""
        y = real.labels71()
        if y is not None:
            from midtecg.data.labels import vector_to_labels

            labels = ",".join(vector_to_labels(y[ri[k]])[:6])
        snr = _finite(fid["per_record"]["snr_db"][k])
        r = _finite(fid["per_record"]["abs_r"][k])
        out.append({"real": real.signals[ri[k]], "synth": synth.signals[si[k]], "fs": real.fs,
                    "title": f"{rid} {('[' + labels + ']') if labels else ''}  SNR {snr:.1f} dB, |r| {r:.2f}"})
    return out


# =====================================================================================================
# the report


def _fmt(v, digits: int = 4) -> str:
    v = _finite(v) if not isinstance(v, str) else v
    if isinstance(v, str):
        return v
    return "n/a" if math.isnan(v) else f"{v:.{digits}g}"


def _with_floor(value, floor) -> str:
    return f"{_fmt(value)}  (real-vs-real floor {_fmt(floor)})" if floor is not None else _fmt(value)


def _summary_rows(report, result: dict) -> None:
    s = result.get("summary", {})
    add = report.add_summary
    add("real / synthetic records", f"{s.get('n_real')} / {s.get('n_synth')}")
    add("pairing", f"{s.get('pairing')} ({s.get('n_pairs', 0)} pairs)")
    if "snr_db" in s:
        add("SNR (dB)", s.get("snr_db"))
        add("RMSE (mV) / PRD (%) / |r|", f"{_fmt(s.get('rmse'))} / {_fmt(s.get('prd'))} / {_fmt(s.get('abs_r'))}")
        add("inter-lead correlation error: mean / max / between means",
            f"{_fmt(s.get('interlead_error_mean'))} / {_fmt(s.get('interlead_error_max'))} / "
            f"{_fmt(s.get('interlead_error_between_means'))}")
    if "frechet" in s:
        add("Frechet distance (embeddings)", f"{_fmt(s.get('frechet'))}; at the floor's n "
            f"{_fmt(s.get('frechet_at_floor_n'))} "
            f"(real-vs-real floor {_fmt(s.get('frechet_floor'))})")
        add("KID (embeddings)", _with_floor(s.get("kid"), s.get("kid_floor")))
    if "mmd2" in s:
        add("MMD^2 (signals)", _with_floor(s.get("mmd2"), s.get("mmd2_floor")))
        add("Welch PSD distance (dB, mean over leads)",
            _with_floor(s.get("psd_distance_db"), s.get("psd_distance_floor_db")))
        add("mean correlation matrix error", _with_floor(s.get("corr_matrix_error"), s.get("corr_matrix_error_floor")))
    if "delineation_failure_synth" in s:
        add("delineation failure rate real / synthetic",
            f"{_fmt(s.get('delineation_failure_real'))} / {_fmt(s.get('delineation_failure_synth'))}")
        add("heart rate / QRS / QTc Wasserstein (bpm / ms / ms)",
            f"{_fmt(s.get('heart_rate_wasserstein'))} / {_fmt(s.get('qrs_ms_wasserstein'))} / "
            f"{_fmt(s.get('qtc_ms_wasserstein'))}")
    if "heart_rate_mae_bpm" in s:
        add("heart-rate error vs requested (MAE, bpm)", s.get("heart_rate_mae_bpm"))
    if "privacy_gate" in s:
        failed = _get(result, "privacy", "gate", "failed") or []
        add("privacy gate", s["privacy_gate"] + (f" ({', '.join(failed)})" if failed else ""))
        add("membership inference AUC (distance, signal space)", s.get("mia_distance_auc"))
    for key, value in s.items():
        if key.startswith("auc_"):
            add(f"macro AUC {key[4:].replace('_', ' ', 1)}", value)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _fidelity_section(report, result: dict, examples: list[dict] | None) -> None:
    from midtecg.plotting import plot_ecg_comparison

    fid = result.get("fidelity")
    report.add_section("Fidelity (paired)", "Each synthetic ECG against the real ECG whose conditions it was "
                       "generated from: SNR, RMSE, PRD and |Pearson r| per lead, averaged over records; inter-lead "
                       "correlation error per record (mean and max of |C_real - C_synth| over the 66 lead pairs).")
    if not isinstance(fid, dict) or "summary" not in fid:
        report.add_note("Paired metrics were not computed: " + (_get(result, "pairing", "reason") or
                                                               "switched off or failed") + ".", level="warning")
        return
    report.add_table("Summary", {k: fid["summary"].get(k) for k in ("snr_db", "rmse", "prd", "abs_r")} |
                     {"interlead_mean": _get(fid, "interlead", "mean_abs_error"),
                      "interlead_max": _get(fid, "interlead", "max_abs_error"),
                      "interlead_between_means": _get(fid, "interlead", "between_means", "mean_abs_error"),
                      "n_records": fid.get("n_records"), "snr_capped_values": fid.get("snr_n_inf")},
                     caption="SNR in dB (exact copies capped at "
                     f"{_fmt(fid.get('snr_cap_db'))} dB), RMSE in mV, PRD in %.")
    per_lead = fid.get("per_lead") or {}
    if per_lead:
        leads = list(next(iter(per_lead.values())).keys())
        report.add_table("Per lead", _frame([{"lead": lead, **{m: per_lead[m].get(lead) for m in per_lead}}
                                             for lead in leads]))
    bd = fid.get("breakdown")
    if isinstance(bd, dict) and bd:
        rows = []
        for group, entry in bd.items():
            row = {"superclass": group, "n": entry.get("n")}
            for metric in ("snr_db", "rmse", "prd", "abs_r", "interlead_mean", "interlead_max"):
                row[metric] = _get(entry, metric, "mean")
            rows.append(row)
        report.add_table("By diagnostic superclass", _frame(rows), caption=fid.get("breakdown_by"))
    if examples:
        report.add_text("Examples: real (black) and synthetic (red) 12-lead ECGs, paired by conditions; one per "
                        "diagnostic superclass where the test set has it.")
        for ex in examples:
            fig = plot_ecg_comparison(ex["real"], ex["synth"], fs=ex["fs"], leads=WFDB_LEADS, title=ex["title"])
            report.add_figure(None, fig, dpi=72)
    elif examples is None:
        report.add_note("Example 12-lead comparison plots need the raw signals; this page was rebuilt from "
                        "evaluation.json, so they are omitted.")


def _distributional_section(report, result: dict) -> None:
    from midtecg.plotting import correlation_heatmaps

    dist = result.get("distributional") or {}
    report.add_section("Distributional", "Unpaired comparisons of the two sets. Every distance comes with its "
                       "real-vs-real floor: the same distance between two disjoint random halves of the real set, "
                       "the value an ideal generator would reach with that many records.")
    rows = []
    m = dist.get("mmd")
    if isinstance(m, dict):
        rows.append({"metric": "MMD^2 (signals, Gaussian kernel, median heuristic)", "value": m.get("mmd2"),
                     "floor": _get(m, "floor", "mmd2"), "n_real": m.get("n_real"), "n_synth": m.get("n_synth")})
    p = dist.get("welch_psd")
    if isinstance(p, dict):
        rows.append({"metric": "Welch PSD distance (dB, mean over leads)", "value": p.get("mean"),
                     "floor": _get(p, "floor", "mean"), "n_real": p.get("n_real"), "n_synth": p.get("n_synth")})
    c = dist.get("correlation_between_means")
    if isinstance(c, dict):
        rows.append({"metric": "mean inter-lead correlation matrix error", "value": c.get("mean_abs_error"),
                     "floor": _get(c, "floor", "mean_abs_error"), "n_real": _get(result, "inputs", "real", "n"),
                     "n_synth": _get(result, "inputs", "synth", "n")})
    e = dist.get("embedding")
    if isinstance(e, dict):
        fd, k = e.get("frechet", {}), e.get("kid", {})
        rows.append({"metric": "Frechet distance (classifier embeddings)", "value": fd.get("value"),
                     "floor": fd.get("floor"), "n_real": fd.get("n_real"), "n_synth": fd.get("n_synth")})
        rows.append({"metric": f"Frechet distance at the floor's n ({fd.get('n_floor')})",
                     "value": fd.get("value_at_floor_n"), "floor": fd.get("floor"), "n_real": fd.get("n_floor"),
                     "n_synth": fd.get("n_floor")})
        rows.append({"metric": "KID (classifier embeddings)", "value": k.get("kid"), "floor": k.get("floor"),
                     "n_real": k.get("n_real"), "n_synth": k.get("n_synth")})
    if rows:
        report.add_table("Distances", _frame(rows))
    if isinstance(e, dict):
        report.add_note(f"Embeddings: pooled penultimate features (dim {_get(e, 'frechet', 'dim')}) of an XResNet "
                        "classifier trained on the real training records. The Frechet distance is biased upwards "
                        "at small n: compare it at the floor's n with the floor.")
    clf = dist.get("classifier")
    if isinstance(clf, dict) and "skipped" in clf:
        report.add_note(f"No embedding metrics: {clf['skipped']}.", level="warning")
    if isinstance(p, dict) and isinstance(p.get("per_lead"), dict):
        fl = _get(p, "floor", "per_lead") or {}
        report.add_table("Welch PSD distance per lead (dB)",
                         _frame([{"lead": lead, "distance": v, "floor": fl.get(lead)}
                                 for lead, v in p["per_lead"].items()]))
        fig = _psd_figure(p)
        if fig is not None:
            report.add_figure("Mean power spectra", fig, caption="Mean over records of 10 log10 Welch PSD.")
    if isinstance(c, dict) and c.get("real_mean_matrix") is not None:
        real_m = np.array(c["real_mean_matrix"], dtype=float)
        synth_m = np.array(c["synth_mean_matrix"], dtype=float)
        fig = correlation_heatmaps(real_m, synth_m, title="Mean inter-lead correlation matrices")
        report.add_figure("Inter-lead correlations", fig, caption="Mean over records of each ECG's 12x12 Pearson "
                          "correlation matrix; right: absolute difference (x100 in the cells).")


def _psd_figure(p: dict):
    from midtecg.plotting.ecg import new_figure

    freqs = p.get("freqs")
    real, synth = p.get("mean_log_psd_real"), p.get("mean_log_psd_synth")
    if freqs is None or real is None or synth is None:
        return None
    freqs = np.asarray(freqs, dtype=float)
    real = np.asarray(real, dtype=float)
    synth = np.asarray(synth, dtype=float)
    leads = list((p.get("per_lead") or {}).keys()) or list(WFDB_LEADS)
    show = [lead for lead in ("II", "V1", "V5") if lead in leads] or leads[:3]
    fig = new_figure(3.6 * len(show), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(show), squeeze=False)).ravel()
    for ax, lead in zip(axes, show):
        i = leads.index(lead)
        ax.plot(freqs, real[i], color="#4c72b0", label="real")
        ax.plot(freqs, synth[i], color="#dd8452", label="synthetic")
        ax.set_title(lead, fontsize=10)
        ax.set_xlabel("Hz")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("dB (mV^2/Hz)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _clinical_section(report, result: dict) -> None:
    from midtecg.plotting import interval_histograms

    clin = result.get("clinical")
    report.add_section("Clinical coherence", "Both sets delineated the same way (neurokit2 on lead II): heart "
                       "rate and PR, QRS, QT, QTc intervals (per-record medians over beats), and how often "
                       "delineation fails.")
    if not isinstance(clin, dict) or "comparison" not in clin:
        report.add_note("Clinical metrics were not computed (switched off or failed).", level="warning")
        return
    report.add_note(clin.get("precision_note", ""))
    report.add_note(clin.get("note", ""))
    cmp = clin["comparison"]
    rows = []
    for k, entry in (cmp.get("intervals") or {}).items():
        rows.append({"interval": INTERVAL_TITLES.get(k, k), "real mean": entry.get("real_mean"),
                     "synth mean": entry.get("synth_mean"), "real sd": entry.get("real_std"),
                     "synth sd": entry.get("synth_std"), "Wasserstein": entry.get("wasserstein"),
                     "KS": entry.get("ks_statistic"), "KS p": entry.get("ks_pvalue"),
                     "real missing": entry.get("real_missing_rate"), "synth missing": entry.get("synth_missing_rate")})
    report.add_table("Intervals", _frame(rows), caption=f"Delineation failure rate: real "
                     f"{_fmt(cmp.get('failure_rate_real'))}, synthetic {_fmt(cmp.get('failure_rate_synth'))}.")
    hr_rows = []
    for key, what in (("heart_rate_error", "synthetic: measured - requested"),
                      ("heart_rate_error_real", "real: measured - cache heart_rate (measurement floor)")):
        if isinstance(clin.get(key), dict):
            e = clin[key]
            hr_rows.append({"comparison": what, "MAE": e.get("mae"), "bias": e.get("bias"), "RMSE": e.get("rmse"),
                            "within 5 bpm": e.get("within_5bpm"), "n": e.get("n"), "missing": e.get("n_missing")})
    if hr_rows:
        report.add_table("Heart rate vs conditions (bpm)", _frame(hr_rows))
    if isinstance(clin.get("paired_differences"), dict):
        report.add_table("Paired differences (synthetic - real partner)",
                         _frame([{"interval": INTERVAL_TITLES.get(k, k), **v}
                                 for k, v in clin["paired_differences"].items()]))
    for name, g in (clin.get("groups") or {}).items():
        rows = []
        for group, c in (g.get("comparison") or {}).items():
            row = {name: group, "n real": c.get("n_real"), "n synth": c.get("n_synth"),
                   "failure real": c.get("failure_rate_real"), "failure synth": c.get("failure_rate_synth")}
            for k in ("heart_rate", "qrs_ms", "qt_ms", "qtc_ms"):
                row[f"{k} real"] = _get(c, "intervals", k, "real_mean")
                row[f"{k} synth"] = _get(c, "intervals", k, "synth_mean")
            rows.append(row)
        if rows:
            report.add_table(f"By {name}", _frame(rows), caption=f"Means per group; synthetic groups from the "
                             f"{g.get('synth_groups_from')}.")
    per = clin.get("per_record") or {}
    if "real" in per and "synth" in per:
        real = {INTERVAL_TITLES[k]: np.array(per["real"][k], dtype=float) for k in INTERVAL_TITLES
                if k in per["real"]}
        synth = {INTERVAL_TITLES[k]: np.array(per["synth"][k], dtype=float) for k in INTERVAL_TITLES
                 if k in per["synth"]}
        if real:
            report.add_figure("Interval distributions", interval_histograms(real, synth, units=""),
                              caption="Per-record values; dashed lines are medians.")


def _privacy_section(report, result: dict) -> None:
    from midtecg.plotting import privacy_distance_histogram

    priv = result.get("privacy")
    report.add_section("Privacy", "Does the generator copy, or leak membership of, its training records? "
                       "Distances to the closest training record (DCR), nearest-neighbour distance ratios, "
                       "nearest-neighbour adversarial accuracy and membership-inference attacks (members: training "
                       "records, non-members: the holdout), in signal space and in the classifier's embedding space. "
                       "Distance measures alone can look safe while attacks succeed; and a generator of garbage "
                       "passes every privacy check, so read this with the fidelity results.")
    if not isinstance(priv, dict) or "gate" not in priv:
        reason = priv.get("skipped") if isinstance(priv, dict) else None
        report.add_note(f"Privacy was not audited{': ' + reason if reason else ' (switched off or failed)'}.",
                        level="warning")
        return
    gate = priv["gate"]
    report.add_note(("Privacy gate: PASS" if gate.get("passed") else "Privacy gate: FAIL (" +
                     ", ".join(gate.get("failed") or []) + ")"), level="info" if gate.get("passed") else "warning")
    report.add_table("Gate checks", _frame([{"check": name, **c} for name, c in (gate.get("checks") or {}).items()]))
    keys = ("mia_distance_auc", "mia_density_auc", "mia_density_ratio_auc", "nnaa_train", "nnaa_holdout",
            "nnaa_privacy_loss", "dcr_ratio_median", "dcr_p_value", "dcr_prob_synth_closer", "nndr_synth_median",
            "nndr_holdout_median", "nndr_p_value", "near_copy_count", "near_copy_fraction",
            "near_copy_fraction_holdout", "near_copy_excess", "near_copy_threshold", "n_train", "n_holdout",
            "n_synth", "dim")
    spaces = [s for s in ("signal", "embedding") if isinstance(priv.get(s), dict)]
    report.add_table("Audit", _frame([{"measure": k, **{s: priv[s].get(k) for s in spaces}} for k in keys]))
    for s in spaces:
        a = priv[s]
        if a.get("dcr_synth") is not None and a.get("dcr_holdout") is not None:
            fig = privacy_distance_histogram(np.array(a["dcr_synth"], dtype=float),
                                             np.array(a["dcr_holdout"], dtype=float),
                                             title=f"Distance to closest training record ({s} space)",
                                             vlines={"near-copy threshold": _finite(a.get("near_copy_threshold"))}
                                             if math.isfinite(_finite(a.get("near_copy_threshold"))) else None)
            report.add_figure(None, fig, caption="Synthetic records piling up left of the holdout's distances "
                              "suggest memorised training records.")


def _utility_section(report, result: dict) -> None:
    from midtecg.plotting import errorbar_lines

    util = result.get("utility")
    if util is None:
        return
    report.add_section("Utility", "Classifiers trained on real (TRTR), synthetic (TSTR), real + synthetic and small "
                       "real subsets with and without the synthetic records, all tested on the real test records: "
                       "macro ROC-AUC with bootstrap 95 % intervals.")
    if not isinstance(util, dict) or "skipped" in util:
        report.add_note(f"Utility was not run: {util.get('skipped') if isinstance(util, dict) else 'failed'}.",
                        level="warning")
        return
    for name, u in util.items():
        if not isinstance(u, dict) or "experiments" not in u:
            continue
        rows = [{"experiment": exp, "train": e.get("train"), "n_real": e.get("n_real"), "n_synth": e.get("n_synth"),
                 "macro AUC": e.get("macro_auc"), "CI low": e.get("ci_low"), "CI high": e.get("ci_high"),
                 "seconds": e.get("train_seconds")} for exp, e in u["experiments"].items()]
        report.add_table(f"Label set {name} ({u.get('n_classes')} classes, device {u.get('device')})", _frame(rows))
        fractions = [f for f in (u.get("fractions") or []) if f is not None]
        series = {}
        for label, suffix in (("real only", ""), ("real + synthetic", "+synth")):
            xs, ys, errs = [], [], []
            for f in fractions:
                e = _get(u, "experiments", f"real_{f:g}{suffix}") or (
                    _get(u, "experiments", "TRTR" + suffix) if f == 1.0 else None)
                if isinstance(e, dict) and e.get("macro_auc") is not None:
                    xs.append(f)
                    ys.append(_finite(e.get("macro_auc")))
                    lo, hi = _finite(e.get("ci_low")), _finite(e.get("ci_high"))
                    errs.append((hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else 0.0)
            if xs:
                series[label] = (xs, ys, errs)
        tstr = _get(u, "experiments", "TSTR")
        if isinstance(tstr, dict) and fractions and tstr.get("macro_auc") is not None:
            series["synthetic only (TSTR)"] = ([min(fractions), max(fractions)], [_finite(tstr["macro_auc"])] * 2, None)
        if series:
            fig = errorbar_lines(series, xlabel="fraction of the real training set", ylabel="macro ROC-AUC",
                                 title=f"Low-data regime ({name})", logx=True)
            report.add_figure(f"Low-data utility curves ({name})", fig,
                              caption="Error bars: half the bootstrap 95 % interval.")


def _add_timings(report, timings: dict) -> None:
    report.add_section("Timings")
    report.add_table(None, _frame([{"stage": k, "seconds": v} for k, v in timings.items()]))


def build_report(result: dict, *, examples: list[dict] | None = None, title: str | None = None):
    """A :class:`~midtecg.evaluation.report.Report` from an evaluation result (the dict or its JSON).

    ``examples``: paired ``{"real", "synth", "fs", "title"}`` signals to plot; ``None`` means "not available"
    (rebuilt from JSON) and the page says so. The timings section is added by the caller.
    """
    from midtecg.evaluation.report import Report

    real = _get(result, "inputs", "real") or {}
    synth = _get(result, "inputs", "synth") or {}
    report = Report(title or "midtecg evaluation",
                    subtitle=f"synthetic: {synth.get('source')}  vs  real: {real.get('source')}"
                    f"{' (' + str(real.get('split')) + ')' if real.get('split') is not None else ''}")
    _summary_rows(report, result)
    report.add_section("Inputs")
    rows = []
    for role in ("real", "synth", "train", "holdout"):
        d = _get(result, "inputs", role)
        if isinstance(d, dict):
            rows.append({"set": role, **{k: d.get(k) for k in ("source", "split", "n", "fs", "length", "has_ecg_id",
                                                                "has_labels")}})
    report.add_table(None, _frame(rows))
    if _get(result, "inputs", "holdout") == "real":
        report.add_text("Privacy holdout (records the generator never saw): the real set.")
    for note in result.get("notes") or []:
        report.add_note(note)
    for stage, error in (result.get("errors") or {}).items():
        report.add_note(f"Stage {stage} failed: {str(error).splitlines()[0]}", level="warning")
    _fidelity_section(report, result, examples)
    _distributional_section(report, result)
    _clinical_section(report, result)
    _privacy_section(report, result)
    _utility_section(report, result)
    return report


def write_report(evaluation_json: str | os.PathLike, out_html: str | os.PathLike, *, title: str | None = None) -> Path:
    """Rebuild the HTML report from a saved ``evaluation.json`` (the ``midtecg report`` command).

    The example ECG plots need the raw signals and are left out; the page says so. Returns the path written.
    """
    path = Path(evaluation_json)
    if path.is_dir():
        path = path / JSON_NAME
    if not path.is_file():
        raise FileNotFoundError(f"evaluation JSON not found: {path}")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        found = result.get("format") if isinstance(result, dict) else None
        raise ValueError(f"{path}: not a midtecg evaluation (format {found!r})")
    if int(result.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path}: evaluation format version {result.get('version')} is newer than this midtecg")
    report = build_report(result, examples=None, title=title)
    report.add_summary("rebuilt from", str(path))
    if isinstance(result.get("timings"), dict):
        _add_timings(report, result["timings"])
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    return report.write_html(out)
