"""Time of delineation + rhythm measures of the 277 records of fold 10 (shared PTB-XL, 100 Hz) on one core,
first run (measured) and second run (read from the measurement cache). Prints one JSON object.

Real records: the prepared 100 Hz cache of ``../shared/data/ptbxl`` (``--cache``; made in a temporary folder
when not given), fold 10. The measurement cache is a fresh temporary folder, so the first run really
measures. ``--neurokit`` also times the previous method (neurokit2 clean + peaks + DWT delineation on lead
II, one record at a time) on ``--neurokit-n`` records, for comparison.

    python benchmarks/delineation_speed.py --cache /work/cache/ptbxl-100hz
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ptbxl"


def _fold10(cache: str | None) -> np.ndarray:
    from midtecg.data.cache import load_prepared, prepare

    folder = Path(cache) if cache else Path(tempfile.gettempdir()) / "midtecg_bench_ptbxl100"
    if not (folder / "manifest.json").is_file():
        prepare(SHARED, folder, progress=False)
    return np.asarray(load_prepared(folder, 10).signals, dtype=np.float32)


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _neurokit_seconds(x: np.ndarray) -> float:
    import neurokit2 as nk

    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sig in x[:, 1, :].astype(np.float64):
            try:
                clean = nk.ecg_clean(sig, sampling_rate=100)
                _, info = nk.ecg_peaks(clean, sampling_rate=100)
                nk.ecg_delineate(clean, info["ECG_R_Peaks"], sampling_rate=100, method="dwt")
            except Exception:  # noqa: BLE001 - timing only
                pass
    return time.process_time() - start


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", help="prepared 100 Hz cache of ../shared/data/ptbxl (default: a temp folder)")
    p.add_argument("--neurokit", action="store_true", help="also time the neurokit2 DWT delineation")
    p.add_argument("--neurokit-n", type=int, default=60, help="records for the neurokit2 timing (default 60)")
    args = p.parse_args(argv)

    from midtecg.evaluation.clinical import delineate
    from midtecg.evaluation.rhythm import rhythm_measures

    x = _fold10(args.cache)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="midtecg_bench_measures_") as tmp:

        def both():
            delineate(x, 100.0, n_jobs=1, cache_dir=tmp)
            rhythm_measures(x, 100.0, n_jobs=1, cache_dir=tmp)

        first_wall, first_cpu = _timed(both)
        second_wall, second_cpu = _timed(both)
        files = len(list(Path(tmp).iterdir()))
    out = {
        "records": int(x.shape[0]),
        "fs": 100,
        "source": "shared PTB-XL fold 10",
        "first_run_s": round(first_wall, 3),
        "first_run_cpu_s": round(first_cpu, 3),
        "second_run_s": round(second_wall, 3),
        "second_run_cpu_s": round(second_cpu, 3),
        "ms_per_record_first_cpu": round(1000.0 * first_cpu / x.shape[0], 2),
        "cache_files": files,
        "note": "delineate + rhythm_measures share one measurement pass (one cache entry); n_jobs=1",
    }
    if args.neurokit:
        n = min(args.neurokit_n, x.shape[0])
        cpu = _neurokit_seconds(x[:n])
        out["neurokit_dwt_cpu_s_per_record"] = round(cpu / n, 4)
        out["neurokit_dwt_cpu_s_277_estimated"] = round(cpu / n * x.shape[0], 2)
    out.update(
        load_before=[round(v, 2) for v in load_before],
        load_after=[round(v, 2) for v in os.getloadavg()],
        machine=platform.machine(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
    )
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
