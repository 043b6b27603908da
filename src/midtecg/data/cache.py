"""The prepared cache: what `midtecg prepare` writes and training and evaluation read in seconds.

``OUT/signals.npy``  float32 (N, 12, L) millivolts, WFDB lead order, memory-mappable;
``OUT/records.csv``  one row per signal row: ecg_id, patient_id, strat_fold, age, sex, height, weight,
                     heart_rate and one 0/1 column per SCP code (alphabetical);
``OUT/manifest.json`` source, rate, length, lead names, counts, the content hash of the inputs and the
                     settings, midtecg version, format version. Written last: a cache without it is incomplete.

``prepare`` builds everything in a temporary folder inside OUT and moves the files into place only when
all are written, so an interrupted run never leaves a cache that looks complete. A second run on the same
input with the same settings finds the same hash and returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import midtecg
from midtecg.data.demographics import clean_demographics
from midtecg.data.errors import DataError, DataWarning
from midtecg.data.heart_rate import heart_rate_bpm
from midtecg.data.labels import SCP_CODES, parse_scp_codes
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.ptbxl import load_ptbxl_metadata, read_ptbxl_record, record_path, resolve_folds
from midtecg.data.wfdb_folder import load_folder_metadata, read_folder_record

FORMAT_VERSION = 1
FILES = ("signals.npy", "records.csv", "manifest.json")
RECORD_COLUMNS = ("ecg_id", "patient_id", "strat_fold", "age", "sex", "height", "weight", "heart_rate")


@dataclass
class PreparedData:
    signals: np.ndarray  # (N, 12, L) float32 mV (a read-only memmap when loaded whole)
    records: pd.DataFrame
    manifest: dict
    path: Path

    def __len__(self) -> int:
        return len(self.records)

    def labels(self) -> np.ndarray:
        """(N, 71) float32 multi-hot SCP labels, alphabetical code order."""
        return self.records[list(SCP_CODES)].to_numpy(dtype=np.float32)

    def select(self, mask) -> "PreparedData":
        mask = np.asarray(mask)
        return PreparedData(np.asarray(self.signals[mask]), self.records[mask].reset_index(drop=True),
                            self.manifest, self.path)


def load_prepared(path: str | Path, split=None, mmap: bool = True) -> PreparedData:
    """Open a cache; ``split`` is None (all), train / val / test, a fold or a list of folds."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        hint = "an interrupted or unfinished `midtecg prepare`" if path.is_dir() else "no such folder"
        raise FileNotFoundError(f"{path} is not a complete midtecg cache ({hint}): run `midtecg prepare SOURCE {path}`")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: cache format {manifest.get('format_version')} is not {FORMAT_VERSION}; prepare it again")
    signals = np.load(path / "signals.npy", mmap_mode="r" if mmap else None)
    records = pd.read_csv(path / "records.csv")
    if len(records) != len(signals):
        raise ValueError(f"{path}: records.csv has {len(records)} rows but signals.npy {len(signals)}; prepare it again")
    data = PreparedData(signals, records, manifest, path)
    folds = resolve_folds(split)
    return data if folds is None else data.select(records["strat_fold"].isin(folds).to_numpy())


def _is_ptbxl(source: Path) -> bool:
    return (source / "ptbxl_database.csv").is_file()


def _source_hash(source: Path, table: pd.DataFrame, files: list[Path], settings: dict) -> str:
    """Hash of the metadata bytes, the record files' names and sizes, and the settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name in ("ptbxl_database.csv", "scp_statements.csv", "conditions.csv"):
        if (source / name).is_file():
            digest.update((source / name).read_bytes())
    digest.update(pd.util.hash_pandas_object(table.drop(columns=["scp_codes"]).astype(str), index=False).values.tobytes())
    for path in files:
        for suffix in (".hea", ".dat"):
            file = path.with_suffix(suffix)
            digest.update(f"{file.relative_to(source)}:{file.stat().st_size if file.is_file() else -1}".encode())
    return digest.hexdigest()


def _complete_cache_hash(out: Path) -> str | None:
    if not all((out / name).is_file() for name in FILES):
        return None
    try:
        return json.loads((out / "manifest.json").read_text()).get("source_hash")
    except (json.JSONDecodeError, OSError):
        return None


def prepare(source: str | Path, out: str | Path, rate: int = 100, source_rate: str = "500", folds=None,
            on_missing: str = "error", conditions: str | Path | None = None, strict: bool = False,
            progress: bool = True) -> Path:
    """Cache a PTB-XL folder (or a generic WFDB folder + conditions CSV) at ``rate`` Hz; returns ``out``.

    ``on_missing``: "error" (default) stops before any work when a listed record is absent on disk, naming
    it; "skip" leaves such records out with a warning. ``strict`` turns data warnings (flat leads, impossible
    demographics set to missing) into errors. ``folds`` restricts the cache to some folds.
    """
    source, out = Path(source), Path(out)
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    if rate not in (100, 500):
        raise ValueError(f"rate must be 100 or 500 Hz, got {rate}")
    if not source.is_dir():
        raise FileNotFoundError(f"source folder not found: {source}")
    ptbxl = _is_ptbxl(source)
    table = load_ptbxl_metadata(source) if ptbxl else load_folder_metadata(source, conditions)
    wanted = resolve_folds(folds)
    if wanted is not None:
        table = table[table["strat_fold"].isin(wanted)]
    files = [record_path(source, row, source_rate) if ptbxl else source / row["record"] for _, row in table.iterrows()]
    present = np.array([p.with_suffix(".hea").is_file() and p.with_suffix(".dat").is_file() for p in files], bool)
    if not present.all():
        missing = [f"ecg_id {i} ({p})" for i, p, ok in zip(table["ecg_id"], files, present) if not ok]
        if on_missing == "error":
            raise DataError(missing[0], f"record file missing; {len(missing)} of {len(table)} listed records are "
                            f"absent (first: {', '.join(missing[:5])}). Pass on_missing='skip' / --skip-missing to leave them out")
        warnings.warn(f"{source}: skipping {len(missing)} listed record(s) absent on disk: {', '.join(missing[:10])}"
                      f"{' ...' if len(missing) > 10 else ''}", DataWarning, stacklevel=2)
        table, files = table[present], [p for p, ok in zip(files, present) if ok]
    if table.empty:
        raise DataError(str(source), "no records to prepare")
    settings = {"rate": rate, "source_rate": source_rate if ptbxl else "native", "folds": wanted,
                "on_missing": on_missing, "strict": strict, "format_version": FORMAT_VERSION}
    source_hash = _source_hash(source, table, files, settings)
    if _complete_cache_hash(out) == source_hash:
        return out

    records = _records_table(table, ptbxl, strict)
    length = 10 * rate
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # from here on the old cache is no longer complete
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
    try:
        signals = np.lib.format.open_memmap(tmp / "signals.npy", mode="w+", dtype=np.float32, shape=(len(table), 12, length))
        rows = tqdm(table.iterrows(), total=len(table), desc="prepare", unit="rec", disable=not progress)
        for i, (_, row) in enumerate(rows):
            signals[i] = (read_ptbxl_record(source, row, rate, source_rate, strict) if ptbxl
                          else read_folder_record(source, row, rate, strict))
        signals.flush()
        records["heart_rate"] = np.round(heart_rate_bpm(np.asarray(signals), rate), 2)
        del signals
        records.to_csv(tmp / "records.csv", index=False)
        manifest = {
            "format_version": FORMAT_VERSION, "midtecg_version": midtecg.__version__,
            "source": str(source.resolve()), "source_kind": "ptbxl" if ptbxl else "wfdb-folder",
            "source_hash": source_hash, "rate": rate, "length": length, "lead_names": list(WFDB_LEADS),
            "units": "mV", "dtype": "float32", "shape": [len(records), 12, length], "count": len(records),
            "settings": settings, "folds": {str(k): int(v) for k, v in records["strat_fold"].value_counts().sort_index().items()},
            "heart_rate_missing": int(records["heart_rate"].isna().sum()),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        for name in FILES:  # manifest last: the cache is complete only once it is in place
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _records_table(table: pd.DataFrame, ptbxl: bool, strict: bool) -> pd.DataFrame:
    what = "PTB-XL ecg_id" if ptbxl else "ecg_id"
    demographics = clean_demographics(table, strict=strict, what=what)
    labels = np.zeros((len(table), len(SCP_CODES)), dtype=np.int8)
    index = {code: i for i, code in enumerate(SCP_CODES)}
    for row_number, (ecg_id, codes) in enumerate(zip(table["ecg_id"], table["scp_codes"])):
        for code in parse_scp_codes(codes, f"{what} {ecg_id}"):
            labels[row_number, index[code]] = 1
    records = pd.DataFrame({
        "ecg_id": table["ecg_id"].astype(int).to_numpy(),
        "patient_id": table["patient_id"].to_numpy(),
        "strat_fold": table["strat_fold"].astype(int).to_numpy(),
        **{c: demographics[c].to_numpy() for c in ("age", "sex", "height", "weight")},
        "heart_rate": np.nan,
    })
    return pd.concat([records, pd.DataFrame(labels, columns=list(SCP_CODES))], axis=1)
