"""Wall-clock time of ``midtecg.evaluation.evaluate`` (every stage but utility) for the test fold against as many
unseen real records, twice: the first run measures everything, the second finds the real side's measurements
(delineation, rhythm) and the embedding classifier in their caches.

Real records: fold 10 of a prepared cache (``--cache``, default: ``../shared/data/ptbxl`` prepared at 100 Hz into a
temporary folder); synthetic records: the first ``n`` records of fold 9 (unseen real records, so the verdicts
should read close / pass); training records: folds 1-8. One thread (``--threads``), measurement and classifier
caches in a temporary folder.

Prints one JSON object: per-stage seconds of both runs, the verdicts, sizes, settings, load average and machine.

    python benchmarks/evaluate_speed.py                       # 277 vs 277 on the shared data
    python benchmarks/evaluate_speed.py --cache data/ptbxl-100hz --classifier-epochs 5
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

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ptbxl"


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", help="prepared cache (default: ../shared/data/ptbxl prepared in a temporary folder)")
    parser.add_argument("--classifier-epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch

    from midtecg.data.cache import prepare
    from midtecg.evaluation import EvaluationConfig, evaluate, load_ecg_set
    from midtecg.evaluation.classifier import ClassifierTrainConfig

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="midtecg_bench_") as tmp:
        tmp = Path(tmp)
        os.environ["MIDTECG_CACHE_DIR"] = str(tmp / "measurements")
        t0 = time.perf_counter()
        cache = Path(args.cache) if args.cache else prepare(SHARED, tmp / "ptbxl-100hz", progress=False)
        prepare_seconds = time.perf_counter() - t0
        real = load_ecg_set((cache, "test"), role="real")
        unseen = load_ecg_set((cache, [9]), role="synth")
        unseen = unseen.subset(range(min(len(real), len(unseen))))
        unseen.table = unseen.table.drop(columns=["ecg_id"])  # unpaired: the verdicts, not the pairing, are timed
        config = EvaluationConfig(
            classifier=ClassifierTrainConfig(epochs=args.classifier_epochs, seed=args.seed),
            classifier_dir=str(tmp / "classifier"),
            threads=args.threads,
            seed=args.seed,
            progress=False,
            n_examples=4,
        )
        runs = []
        for run in ("first", "second"):
            start = time.perf_counter()
            result = evaluate(
                (cache, "test"), unseen, train=(cache, "train"), out_dir=tmp / f"eval-{run}", config=config
            )
            runs.append(
                {
                    "run": run,
                    "wall_seconds": round(time.perf_counter() - start, 2),
                    "timings": result["timings"],
                    "verdicts": {axis: v["verdict"] for axis, v in result["verdicts"].items()},
                }
            )
    report = {
        "benchmark": "evaluate_speed",
        "n_real": len(real),
        "n_synth": len(unseen),
        "cache": str(cache),
        "prepare_seconds": round(prepare_seconds, 2),
        "runs": runs,
        "speedup_second_run": round(runs[0]["wall_seconds"] / max(runs[1]["wall_seconds"], 1e-9), 2),
        "classifier_epochs": args.classifier_epochs,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": "cpu",
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
