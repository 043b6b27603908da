"""Wall-clock time of ``midtecg.evaluation.evaluate`` (everything but utility) for 1,000 real vs 1,000 synthetic ECGs.

Real records: ``../shared/data/ptbxl`` at 100 Hz when present (through a prepared cache when
``midtecg.data.cache`` is available, else read directly: the 100 Hz files, or the 500 Hz ones decimated by 5);
``--real`` = the first ``-n`` records of strat_folds 4-10, ``train`` = folds 1-3 (the generator's training set
for privacy and the embedding classifier). Without the shared data, ECG-like records are simulated with
neurokit2. Synthetic records are the real ones circularly shifted, rescaled per lead and noised (ECG-like,
so delineation costs what it costs on real output), carrying the real ``ecg_id`` (paired protocol).

Prints one JSON object: per-stage seconds (``timings``), the sizes, the classifier settings, the load average
before and after (other processes share the cores) and the machine.

    python benchmarks/evaluate_speed.py                 # 1000 vs 1000, classifier trained for 2 epochs
    python benchmarks/evaluate_speed.py -n 200 --classifier-epochs 1 --n-jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ptbxl"


def _read_direct(root: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """PTB-XL at 100 Hz without the cache module: (signals (N, 12, 1000), records with SCP columns)."""
    from scipy.signal import resample_poly

    from midtecg.data.labels import SCP_CODES, labels_to_vector, parse_scp_codes
    from midtecg.io import read_wfdb_record

    db = pd.read_csv(root / "ptbxl_database.csv")
    signals, keep = [], []
    for i, (lr, hr) in enumerate(zip(db.filename_lr, db.filename_hr)):
        if (root / f"{lr}.hea").is_file():
            x = read_wfdb_record(root / lr)[0]
        elif (root / f"{hr}.hea").is_file():
            x = resample_poly(read_wfdb_record(root / hr)[0], 1, 5, axis=-1).astype(np.float32)
        else:
            continue
        if x.shape[-1] == 1000 and np.isfinite(x).all():
            signals.append(x)
            keep.append(i)
    db = db.iloc[keep].reset_index(drop=True)
    labels = np.stack([labels_to_vector(parse_scp_codes(text)) for text in db.scp_codes])
    table = pd.concat([db[["ecg_id", "patient_id", "strat_fold", "age", "sex", "height", "weight"]],
                       pd.DataFrame(labels, columns=list(SCP_CODES))], axis=1)
    return np.stack(signals).astype(np.float32), table


def _shared_ptbxl(cache_dir: Path | None) -> tuple[np.ndarray, pd.DataFrame, str]:
    try:
        from midtecg.data.cache import load_prepared, prepare
    except ImportError:
        x, t = _read_direct(SHARED)
        return x, t, f"{SHARED} read directly (midtecg.data.cache not available)"
    cache = cache_dir or Path(tempfile.gettempdir()) / "midtecg_bench_ptbxl100"
    if not (cache / "manifest.json").is_file():
        prepare(SHARED, cache, progress=False, on_missing="skip")
    data = load_prepared(cache)
    return np.asarray(data.signals, dtype=np.float32), data.records.reset_index(drop=True), f"cache {cache}"


def _simulated(n: int, seed: int) -> tuple[np.ndarray, pd.DataFrame, str]:
    import neurokit2 as nk

    from midtecg.data.labels import SCP_CODES
    from midtecg.data.leads import WFDB_LEADS

    rng = np.random.default_rng(seed)
    bank = []
    for k, hr in enumerate((55, 65, 75, 85, 95, 110)):
        df = nk.ecg_simulate(duration=10, sampling_rate=100, method="multileads", heart_rate=hr, random_state=k)
        cols = {c.lower(): c for c in df.columns}
        bank.append(np.stack([df[cols[name.lower()]].to_numpy() for name in WFDB_LEADS]))
    bank = np.stack(bank)
    which = rng.integers(0, len(bank), n)
    x = np.stack([np.roll(bank[w], int(s), axis=-1) for w, s in zip(which, rng.integers(0, 1000, n))])
    x = x * rng.uniform(0.7, 1.3, (n, 12, 1)) + rng.normal(0, 0.02, x.shape)
    labels = np.zeros((n, len(SCP_CODES)), np.float32)
    labels[np.arange(n), rng.integers(0, len(SCP_CODES), n)] = 1.0
    folds = np.resize(np.arange(1, 11), n)
    table = pd.concat([pd.DataFrame({"ecg_id": np.arange(1, n + 1), "strat_fold": folds,
                                     "age": rng.uniform(20, 90, n).round(), "sex": rng.integers(0, 2, n)}),
                       pd.DataFrame(labels, columns=list(SCP_CODES))], axis=1)
    return x.astype(np.float32), table, "simulated (neurokit2 multileads bank)"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1000, help="real records = synthetic records (default 1000)")
    p.add_argument("--classifier-epochs", type=int, default=2, help="embedding classifier epochs (default 2)")
    p.add_argument("--classifier-dir", help="reuse a cached classifier (default: a fresh temporary folder)")
    p.add_argument("--cache", help="prepared cache of ../shared/data/ptbxl at 100 Hz (default: a temp folder)")
    p.add_argument("--simulate", action="store_true", help="simulated records even when the shared data exist")
    p.add_argument("--n-jobs", type=int, default=2, help="delineation worker processes (default 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads inside evaluate (default 1: far faster on shared cores; 0 = unchanged)")
    p.add_argument("--out", help="output folder (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from midtecg.evaluation import evaluate
    from midtecg.evaluation.utility import ClassifierTrainConfig

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    if SHARED.is_dir() and not args.simulate:
        signals, table, source = _shared_ptbxl(Path(args.cache) if args.cache else None)
        folds = table["strat_fold"].to_numpy()
        real_idx = np.flatnonzero(folds >= 4)[: args.n]
        train_idx = np.flatnonzero(folds <= 3)
    else:
        signals, table, source = _simulated(args.n + max(args.n // 2, 50), args.seed)
        real_idx = np.arange(args.n)
        train_idx = np.arange(args.n, len(signals))
    data_seconds = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    real = signals[real_idx]
    synth = np.stack([np.roll(r, int(s), axis=-1) for r, s in zip(real, rng.integers(50, 950, len(real)))])
    synth = (synth * rng.uniform(0.8, 1.2, (len(real), 12, 1)) +
             rng.normal(0, 0.03, synth.shape)).astype(np.float32)
    real_table = table.iloc[real_idx].reset_index(drop=True)
    train = (signals[train_idx], table.iloc[train_idx].reset_index(drop=True), 100.0)

    with tempfile.TemporaryDirectory(prefix="midtecg_bench_") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "eval"
        clf_dir = Path(args.classifier_dir) if args.classifier_dir else Path(tmp) / "classifier"
        config = ClassifierTrainConfig(epochs=args.classifier_epochs, seed=args.seed)
        start = time.perf_counter()
        result = evaluate((real, real_table, 100.0), (synth, real_table[["ecg_id", "age", "sex"]].copy(), 100.0),
                          train=train, out_dir=out, classifier_dir=clf_dir, classifier_config=config,
                          utility=False, seed=args.seed, n_jobs=args.n_jobs, progress=True,
                          threads=args.threads or None)
        wall = time.perf_counter() - start
        html_mb = (out / "report.html").stat().st_size / 2**20
        json_mb = (out / "evaluation.json").stat().st_size / 2**20
    report = {
        "n_real": len(real), "n_synth": len(synth), "n_train": len(train[0]), "source": source,
        "timings": result["timings"], "wall_seconds": round(wall, 2), "data_loading_seconds": round(data_seconds, 2),
        "classifier": {"model": config.model, "epochs": config.epochs,
                       "embedding_dim": result["distributional"].get("classifier", {}).get("embedding_dim")},
        "n_jobs": args.n_jobs, "threads": args.threads or "unchanged",
        "torch_default_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "report_html_mib": round(html_mb, 2), "evaluation_json_mib": round(json_mb, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "errors": list(result.get("errors", {})), "python": platform.python_version(), "torch": torch.__version__,
        "summary": {k: result["summary"].get(k) for k in ("snr_db", "frechet", "frechet_floor", "mmd2",
                                                          "delineation_failure_synth", "privacy_gate")},
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
