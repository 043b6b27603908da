"""How often does the privacy gate fail unseen real records, and what does it say of copies and garbage?

Data: the prepared 100 Hz cache of ``../shared/data/ptbxl`` (``--cache``; prepared from ``--source`` when it is
missing). The generator's training set is folds 1-8 unless said otherwise. Scenarios, ``--draws`` random draws
each (``--n-synth`` "synthetic" records per draw, all of them *real records of other patients*, so every verdict
other than ``pass`` is a false alarm):

- ``pooled_9_10``: folds 9 and 10 pooled and split at random per draw: half is the holdout, ``n_synth`` records
  of the other half are the synthetic set;
- ``fold10_holdout``: the suite's default holdout (fold 10) against ``n_synth`` random records of fold 9;
- ``train_distribution``: train = folds 1-7, synthetic = ``n_synth`` random records of fold 8 (what a perfect
  generator of the *training* distribution would give), holdout = fold 10: the population difference between
  the training folds and fold 10 must not trigger a fail.

Then one audit per case of a battery (``--battery``): exact copies of training records, copies with 0.02 and
0.05 mV of white noise, amplitude-scaled copies (x 0.8, x 1.25), circularly shifted copies and edge-padded
shifted copies (random shifts up to half the record), 5 % and 50 % of copies among unseen real records, white
noise, 1.2 Hz sines and flat lines; the holdout is fold 10, the copies are of random training records.

``--embeddings FILE.npz`` (arrays ``embeddings`` (N, D) and ``ecg_id`` (N,), e.g. from a classifier trained on
folds 1-8 with :func:`midtecg.evaluation.embeddings.embed_signals`) adds the embedding space to the
scenarios (the battery's transformed records have no embeddings and stay in signal space).

Prints one JSON object: per scenario the verdict counts, pass rate and false-alarm rate (verdict ``fail``),
per-draw verdicts and deciding numbers, seconds per audit (``classic=False``: the gate does not read the
classic measures); the battery's verdicts and reasons; settings, load average and total seconds.

    python benchmarks/privacy_false_alarm.py                       # 20 draws x 3 scenarios + battery
    python benchmarks/privacy_false_alarm.py --draws 50 --n-synth 277 --embeddings emb.npz
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from midtecg.data.cache import is_prepared, load_prepared, prepare
from midtecg.evaluation.privacy import privacy_audit
from midtecg.evaluation.privacy_gate import privacy_gate

REPO = Path(__file__).resolve().parents[1]


def _numbers(gate: dict) -> dict:
    """The deciding numbers of a gate result, one float per check."""
    return {name: round(float(c["value"]), 4) for name, c in gate["checks"].items()}


def _run(train, holdout, synth, emb, rng) -> tuple[dict, float]:
    t0 = time.perf_counter()
    audit = privacy_audit(train, holdout, synth, embeddings=emb, classic=False, rng=rng, keep_arrays=False)
    return privacy_gate(audit), time.perf_counter() - t0


def scenario(signals, emb, train_idx, draw_sets, n_synth, draws, gen) -> dict:
    """``draw_sets(gen) -> (holdout rows, synth rows)``; returns verdict counts and per-draw results."""
    train = np.asarray(signals[train_idx])
    rows, seconds = [], []
    for _ in range(draws):
        h_idx, s_idx = draw_sets(gen)
        e = None if emb is None else {"train": emb[train_idx], "holdout": emb[h_idx], "synth": emb[s_idx]}
        gate, sec = _run(train, np.asarray(signals[h_idx]), np.asarray(signals[s_idx]), e, gen)
        rows.append({"verdict": gate["verdict"], "failed": gate["failed"], "far": gate["far"], **_numbers(gate)})
        seconds.append(sec)
    verdicts = [r["verdict"] for r in rows]
    return {
        "draws": draws,
        "n_train": len(train_idx),
        "n_synth": int(n_synth),
        "counts": {v: verdicts.count(v) for v in ("pass", "fail", "not_informative")},
        "pass_rate": verdicts.count("pass") / draws,
        "false_alarm_rate": verdicts.count("fail") / draws,
        "seconds_per_audit": round(float(np.mean(seconds)), 2),
        "per_draw": rows,
    }


def battery(train, holdout, unseen, n, gen) -> dict:
    src = train[gen.choice(len(train), n, replace=False)].astype(np.float64)
    length = src.shape[-1]
    shift = gen.integers(1, length // 2, n)
    t = np.arange(length) / 100.0
    k5 = max(1, n // 20)
    cases = {
        "exact_copies": src,
        "copies_noise_0.02mV": src + 0.02 * gen.normal(size=src.shape),
        "copies_noise_0.05mV": src + 0.05 * gen.normal(size=src.shape),
        "copies_x0.8": 0.8 * src,
        "copies_x1.25": 1.25 * src,
        "copies_rolled": np.stack([np.roll(s, k, axis=-1) for s, k in zip(src, shift)]),
        "copies_shift_edge_padded": np.stack(
            [np.concatenate([np.repeat(s[:, :1], k, axis=1), s[:, :-k]], axis=1) for s, k in zip(src, shift)]
        ),
        "copies_5pct_among_unseen": np.concatenate([unseen[: n - k5], src[:k5]]),
        "copies_50pct_among_unseen": np.concatenate([unseen[: n - n // 2], src[: n // 2]]),
        "white_noise": float(train.std()) * gen.normal(size=src.shape),
        "sines_1.2Hz": 0.5 * np.sin(2 * np.pi * 1.2 * t + gen.uniform(0, 2 * np.pi, (n, 1, 1))) * np.ones((n, 12, 1)),
        "flat_lines": np.zeros_like(src),
    }
    out = {}
    for name, synth in cases.items():
        gate, sec = _run(train, holdout, synth, None, gen)
        out[name] = {"verdict": gate["verdict"], "reason": gate["reason"], "seconds": round(sec, 2), **_numbers(gate)}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", type=Path, default=REPO.parent / "cache" / "ptbxl-100hz")
    p.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--n-synth", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embeddings", type=Path, default=None)
    p.add_argument("--no-battery", dest="battery", action="store_false")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    if not is_prepared(args.cache):
        prepare(args.source, args.cache, progress=False)
    data = load_prepared(args.cache)
    fold = data.records["strat_fold"].to_numpy()
    signals = np.asarray(data.signals)
    emb = None
    if args.embeddings is not None:
        z = np.load(args.embeddings)
        order = {int(e): i for i, e in enumerate(z["ecg_id"])}
        emb = z["embeddings"][[order[int(e)] for e in data.records["ecg_id"]]].astype(np.float64)
    gen = np.random.default_rng(args.seed)
    train = np.flatnonzero(fold <= 8)
    pool = np.flatnonzero(fold >= 9)
    f8, f9, f10 = (np.flatnonzero(fold == k) for k in (8, 9, 10))
    n = args.n_synth

    def pooled(g):
        perm = g.permutation(pool)
        half = len(pool) // 2
        return np.sort(perm[:half]), np.sort(perm[half : half + min(n, len(pool) - half)])

    result = {
        "settings": {
            "cache": str(args.cache),
            "draws": args.draws,
            "n_synth": n,
            "seed": args.seed,
            "embeddings": None if emb is None else {"file": str(args.embeddings), "dim": int(emb.shape[1])},
            "fold_sizes": {int(k): int((fold == k).sum()) for k in np.unique(fold)},
        },
        "scenarios": {
            "pooled_9_10": scenario(signals, emb, train, pooled, min(n, len(pool) - len(pool) // 2), args.draws, gen),
            "fold10_holdout": scenario(
                signals,
                emb,
                train,
                lambda g: (f10, np.sort(g.choice(f9, min(n, len(f9)), replace=False))),
                min(n, len(f9)),
                args.draws,
                gen,
            ),
            "train_distribution": scenario(
                signals,
                emb,
                np.flatnonzero(fold <= 7),
                lambda g: (f10, np.sort(g.choice(f8, min(n, len(f8)), replace=False))),
                min(n, len(f8)),
                args.draws,
                gen,
            ),
        },
    }
    if args.battery:
        result["battery"] = battery(
            np.asarray(signals[train]), np.asarray(signals[f10]), np.asarray(signals[f9]), min(n, len(f9)), gen
        )
    result.update(
        seconds=round(time.perf_counter() - t_start, 1),
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        machine=platform.platform(),
        cpu_count=os.cpu_count(),
    )
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
