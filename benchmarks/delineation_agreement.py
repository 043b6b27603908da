"""Validation of the delineation on real PTB-XL records: medians of the NORM records and agreement of the same
records delineated at 100 Hz and at 500 Hz. Prints one JSON object.

The real records are the prepared caches of ``../shared/data/ptbxl`` (``midtecg prepare ... --rate 100`` and
``--rate 500``; made in a temporary folder when not given). The 100 Hz cache is resampled from the 500 Hz
files; ``--official-100`` also delineates PTB-XL's own 100 Hz files (``records100``) of those records that have one
(ecg_id 1-500 in the shared subset).

Per interval: NORM medians (100 Hz, 500 Hz, official 100 Hz files), their physiological range (PR 120-200,
QRS 70-115, QTc 360-460 ms), and per record the mean difference (bias) and mean absolute difference (MAE)
of the 100 Hz against the 500 Hz values.

    python benchmarks/delineation_agreement.py --cache100 /work/cache/ptbxl-100hz --cache500 /work/cache/ptbxl-500hz
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ptbxl"
KEYS = ("heart_rate", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")
RANGES = {"pr_ms": (120, 200), "qrs_ms": (70, 115), "qtc_ms": (360, 460)}


def _cache(path: str | None, rate: int):
    from midtecg.data.cache import load_prepared, prepare

    folder = Path(path) if path else Path(tempfile.gettempdir()) / f"midtecg_bench_ptbxl{rate}"
    if not (folder / "manifest.json").is_file():
        prepare(SHARED, folder, rate=rate, progress=False)
    return load_prepared(folder)


def _official_100(records) -> tuple[np.ndarray, np.ndarray]:
    """PTB-XL's own 100 Hz files of those records that have one: (signals, row mask)."""
    import pandas as pd
    import wfdb

    db = pd.read_csv(SHARED / "ptbxl_database.csv", index_col="ecg_id")
    files = db.loc[records["ecg_id"].to_numpy(), "filename_lr"].to_numpy()
    have = np.array([(SHARED / f"{f}.hea").is_file() for f in files])
    return np.stack([wfdb.rdsamp(str(SHARED / f))[0].T for f in files[have]]).astype(np.float32), have


def _agreement(a: dict, b: dict, rows: np.ndarray) -> dict:
    out = {}
    for k in KEYS:
        d = a[k] - b[k][rows]
        d = d[np.isfinite(d)]
        out[k] = {"bias": float(d.mean()), "mae": float(np.abs(d).mean()), "n_both": int(d.size)}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache100", help="prepared 100 Hz cache of ../shared/data/ptbxl")
    p.add_argument("--cache500", help="prepared 500 Hz cache of ../shared/data/ptbxl")
    p.add_argument("--official-100", action="store_true", help="also PTB-XL's own records100 files")
    p.add_argument("--all-records", action="store_true", help="every record, not only NORM")
    args = p.parse_args(argv)

    from midtecg.data.labels import label_set_codes
    from midtecg.evaluation.clinical import delineate

    d100, d500 = _cache(args.cache100, 100), _cache(args.cache500, 500)
    if not np.array_equal(d100.records["ecg_id"], d500.records["ecg_id"]):
        raise SystemExit("the 100 Hz and 500 Hz caches hold different records")
    sup = d100.labels("superdiagnostic")
    norm = sup[:, label_set_codes("superdiagnostic").index("NORM")] > 0
    sel = np.ones(len(norm), bool) if args.all_records else norm
    n = int(sel.sum())
    sets = {
        "100hz": (np.asarray(d100.signals[sel]), 100.0, np.ones(n, bool)),
        "500hz": (np.asarray(d500.signals[sel]), 500.0, np.ones(n, bool)),
    }
    if args.official_100:
        x, have = _official_100(d100.records[sel])
        sets["100hz_official"] = (x, 100.0, have)
    result: dict = {
        "records": "all" if args.all_records else "NORM (superdiagnostic)",
        "n": n,
        "n_per_set": {name: int(v[2].sum()) for name, v in sets.items()},
    }
    tables, seconds = {}, {}
    for name, (x, fs, _) in sets.items():
        t0 = time.process_time()
        tables[name] = delineate(x, fs, cache_dir=False)
        seconds[name] = time.process_time() - t0
    result["medians"] = {name: {k: float(np.nanmedian(t[k])) for k in KEYS} for name, t in tables.items()}
    result["failure_rate"] = {name: t["failure_rate"] for name, t in tables.items()}
    result["missing_rate"] = {name: {k: float(np.isnan(t[k]).mean()) for k in KEYS} for name, t in tables.items()}
    result["physiological_ranges"] = RANGES
    result["in_range"] = {
        name: {k: bool(lo <= result["medians"][name][k] <= hi) for k, (lo, hi) in RANGES.items()} for name in tables
    }
    result["agreement_vs_500hz"] = {
        name: _agreement(t, tables["500hz"], sets[name][2]) for name, t in tables.items() if name != "500hz"
    }
    result["cpu_seconds"] = seconds
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
