"""Does the evaluation suite tell good from bad? Its verdicts on a battery of real, copied and garbage sets.

Real records: fold 10 of a prepared cache (277 in ``../shared/data/ptbxl``); training records: folds 1-8. Each
case is a synthetic set of as many records as fold 10, evaluated with :func:`midtecg.evaluation.evaluate`
(everything but utility, one embedding classifier shared by all cases):

==================  ===========================================================================  ================
case                what                                                                         must be
==================  ===========================================================================  ================
unseen real         records of fold 9 (never seen by a generator trained on folds 1-8)           close, pass
exact copies        training records                                                             privacy fail
noisy copies        training records + N(0, 0.02 mV)                                             privacy fail
scaled copies       training records x 1.25                                                      privacy fail
shifted copies      training records rolled by 50-950 samples                                    privacy fail
white noise         N(0, sd of the real records)                                                 far, not inform.
sines               1.2 Hz sine waves, 0.5 mV                                                    far, not inform.
flat lines          zeros                                                                        far, not inform.
built-in model      the built-in generator, conditions of fold 10 (paired), its default sampler  (measured)
==================  ===========================================================================  ================

Writes ``OUT/battery.json`` (verdicts, deciding numbers with floors, timings per case) and ``OUT/battery.md``
(the table), and prints the table. Resumable: finished cases are read back from ``OUT/cases/``.

    python experiments/evaluation_battery/run.py --cache data/ptbxl-100hz --out runs/battery
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CASES = (
    "unseen real",
    "exact copies",
    "noisy copies",
    "scaled copies",
    "shifted copies",
    "white noise",
    "sines",
    "flat lines",
    "built-in model",
)


def make_case(name: str, real, train, unseen, rng: np.random.Generator, out: Path):
    """The synthetic set of one case: (signals, table, fs)."""
    n, shape = len(real), real.signals.shape
    table = real.table.drop(columns=["ecg_id"])
    if name == "unseen real":
        s = unseen.subset(np.arange(min(n, len(unseen))))
        return s.signals, s.table.drop(columns=["ecg_id"]), s.fs
    if name.endswith("copies"):
        pick = train.subset(rng.choice(len(train), n, replace=False))
        x = pick.signals
        if name == "noisy copies":
            x = x + rng.normal(0, 0.02, x.shape).astype(np.float32)
        elif name == "scaled copies":
            x = 1.25 * x
        elif name == "shifted copies":
            x = np.stack([np.roll(r, int(k), axis=-1) for r, k in zip(x, rng.integers(50, 950, n))])
        return x, pick.table.drop(columns=["ecg_id"]), pick.fs
    t = np.arange(shape[-1]) / real.fs
    if name == "white noise":
        return rng.normal(0, float(real.signals.std()), shape).astype(np.float32), table, real.fs
    if name == "sines":
        return np.broadcast_to(0.5 * np.sin(2 * np.pi * 1.2 * t), shape).astype(np.float32), table, real.fs
    if name == "flat lines":
        return np.zeros(shape, np.float32), table, real.fs
    if name == "built-in model":
        from midtecg.generate import generate, paired_conditions

        conditions = paired_conditions(real_cache_path(real), split="test")
        result = generate(
            conditions,
            out_dir=out / "built-in model",
            formats=("npz",),
            seed=0,  # the model's own sampler (recorded in its config.json)
            progress=False,
            strict=False,
            overwrite=True,
        )
        return result.ecgs  # carries ecg_ids: paired with fold 10
    raise ValueError(f"unknown case {name!r}")


def real_cache_path(real) -> Path:
    return Path(str(real.source).removeprefix("cache "))


def summarise(result: dict, seconds: float) -> dict:
    verdicts = result["verdicts"]
    gate = result.get("privacy", {}).get("gate", {})
    return {
        "verdicts": {axis: v["verdict"] for axis, v in verdicts.items()},
        "reasons": {axis: v.get("reason", "") for axis, v in verdicts.items()},
        "privacy_signal_near_copy_excess": (gate.get("checks") or {}).get("signal.near_copy_excess", {}).get("value"),
        "summary": result["summary"],
        "timings": result["timings"],
        "seconds": round(seconds, 1),
    }


def table(rows: dict) -> str:
    axes = ("fidelity", "rhythm", "clinical", "labels", "privacy")
    keys = ("fidelity.frechet", "fidelity.recall", "rhythm.rr_cv", "clinical.qrs_ms")
    head = "| case | " + " | ".join(axes) + " | " + " | ".join(f"{k} (floor)" for k in keys) + " | seconds |"
    lines = [head, "|" + "---|" * (len(axes) + len(keys) + 2)]
    for name, r in rows.items():
        s = r["summary"]

        def cell(k, s=s):
            v, f = s.get(k), s.get(f"{k}.floor")
            return "n/a" if v is None else f"{v:.3g} ({f:.3g})" if f is not None else f"{v:.3g}"

        lines.append(
            f"| {name} | "
            + " | ".join(r["verdicts"].get(a, "") for a in axes)
            + " | "
            + " | ".join(cell(k) for k in keys)
            + f" | {r['seconds']} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="prepared 100 Hz cache of PTB-XL (folds 1-10)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of the cases")
    parser.add_argument("--classifier-epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch

    from midtecg.evaluation import EvaluationConfig, evaluate, load_ecg_set
    from midtecg.evaluation.classifier import ClassifierTrainConfig

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "cases").mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache)
    real = load_ecg_set((cache, "test"), role="real")
    train = load_ecg_set((cache, "train"), role="train")
    unseen = load_ecg_set((cache, [9]), role="unseen")
    config = EvaluationConfig(
        classifier=ClassifierTrainConfig(epochs=args.classifier_epochs, seed=0),
        classifier_dir=str(out / "classifier"),
        threads=args.threads,
        progress=False,
        n_examples=0,
    )
    rows = {}
    for i, name in enumerate(n.strip() for n in args.cases.split(",")):
        path = out / "cases" / f"{name.replace(' ', '_')}.json"
        if path.is_file():
            rows[name] = json.loads(path.read_text())
            continue
        synth = make_case(name, real, train, unseen, np.random.default_rng(i), out)
        start = time.perf_counter()
        result = evaluate((cache, "test"), synth, train=(cache, "train"), config=config)
        rows[name] = summarise(result, time.perf_counter() - start)
        path.write_text(json.dumps(rows[name], indent=1))
        print(f"{name}: {rows[name]['verdicts']} ({rows[name]['seconds']} s)", file=sys.stderr, flush=True)
    text = table(rows)
    (out / "battery.md").write_text(text + "\n")
    (out / "battery.json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
