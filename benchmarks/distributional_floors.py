"""Set distances between real PTB-XL sets beside their real-vs-real floors (``midtecg.evaluation.set_distances``).

Unseen real records must sit within their floor: ``real`` = folds 1-8 (1,924 records, among them one with a
28.5 mV artefact), ``synth`` = fold 10 (277 records, other patients), and the other way round (``real`` =
fold 10, ``synth`` = 277 random records of folds 1-8 always including the artefact record). For each direction:
:func:`~midtecg.evaluation.set_distances.signal_distances` (MMD, Welch, inter-lead correlation) and
:func:`~midtecg.evaluation.set_distances.embedding_distances` (FD, KID, precision, recall) on two embeddings: a cheap
signal-space one (per-lead log Welch power in 0.4 Hz bins up to 40 Hz, 12 x 100 values) and, with
``--embeddings FILE.npz`` (``embeddings`` (N, D), ``ecg_id`` (N,)), classifier embeddings. The plain Frechet
distance on the raw embeddings (no winsorising, no projection) is printed beside the robust one, with its own
20-split floor. Also one far set per direction (white noise of the real set's RMS) as a check that far is far.

    python benchmarks/distributional_floors.py --embeddings emb.npz
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from midtecg.data.cache import is_prepared, load_prepared, prepare
from midtecg.evaluation.distributional import frechet_distance
from midtecg.evaluation.set_distances import embedding_distances, floor_splits, signal_distances
from midtecg.evaluation.spectra import log_psd

REPO = Path(__file__).resolve().parents[1]


KEYS = ("value", "value_at_floor_n", "floor_mean", "floor_std", "z", "n_floor")


def psd_embedding(x) -> np.ndarray:
    freqs, s = log_psd(x, fs=100, nperseg=256)
    keep = (freqs > 0) & (freqs <= 40)
    return s[:, :, keep].reshape(len(x), -1)


def plain_fd(real, synth, n_splits, seed) -> dict:
    n_floor, splits = floor_splits(len(real), len(synth), n_splits, seed)
    floor = [frechet_distance(real[a], real[b]) for a, b, _ in splits]
    at_n = [frechet_distance(real[a], synth[s]) for a, _, s in splits]
    return {
        "value": frechet_distance(real, synth),
        "value_at_floor_n": float(np.mean(at_n)),
        "floor_mean": float(np.mean(floor)),
        "floor_std": float(np.std(floor, ddof=1)),
        "n_floor": n_floor,
    }


def brief(d: dict) -> dict:
    out = {}
    for name, m in d.items():
        if isinstance(m, dict) and "value" in m:
            out[name] = {k: (round(m[k], 6) if isinstance(m[k], float) else m[k]) for k in KEYS if k in m}
            for extra in ("ratio", "dim", "bandwidth", "std"):
                if extra in m:
                    out[name][extra] = round(float(m[extra]), 6)
        elif name == "winsorized":
            out[name] = m
    return out


def compare(real, synth, emb_real: dict, emb_synth: dict, n_splits: int, seed: int) -> dict:
    t0 = time.perf_counter()
    out = {
        "n_real": len(real),
        "n_synth": len(synth),
        "signal": brief(signal_distances(real, synth, fs=100, n_splits=n_splits, seed=seed)),
    }
    out["signal_seconds"] = round(time.perf_counter() - t0, 2)
    for name, e_real in emb_real.items():
        t0 = time.perf_counter()
        out[name] = brief(embedding_distances(e_real, emb_synth[name], n_splits=n_splits, seed=seed))
        out[name]["seconds"] = round(time.perf_counter() - t0, 2)
        out[name]["plain_frechet"] = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in plain_fd(e_real, emb_synth[name], n_splits, seed).items()
        }
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", type=Path, default=REPO.parent / "cache" / "ptbxl-100hz")
    p.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl")
    p.add_argument("--embeddings", type=Path, default=None)
    p.add_argument("--n-splits", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    if not is_prepared(args.cache):
        prepare(args.source, args.cache, progress=False)
    data = load_prepared(args.cache)
    fold = data.records["strat_fold"].to_numpy()
    x = np.asarray(data.signals, dtype=np.float32)
    emb = {"psd": psd_embedding(x)}
    if args.embeddings is not None:
        z = np.load(args.embeddings)
        order = {int(e): i for i, e in enumerate(z["ecg_id"])}
        emb["classifier"] = z["embeddings"][[order[int(e)] for e in data.records["ecg_id"]]].astype(np.float64)
    gen = np.random.default_rng(args.seed)
    train, test = np.flatnonzero(fold <= 8), np.flatnonzero(fold == 10)
    artefact = int(np.argmax(np.abs(x).max(axis=(1, 2))))
    sample = np.union1d(gen.choice(np.setdiff1d(train, [artefact]), len(test) - 1, replace=False), [artefact])
    noise = float(x[test].std()) * gen.normal(size=(len(test),) + x.shape[1:]).astype(np.float32)
    emb_noise = {"psd": psd_embedding(noise)}
    result = {
        "artefact_record": {
            "ecg_id": int(data.records["ecg_id"][artefact]),
            "fold": int(fold[artefact]),
            "max_abs_mv": round(float(np.abs(x[artefact]).max()), 2),
        },
        "folds_1_8_vs_fold_10": compare(
            x[train],
            x[test],
            {k: e[train] for k, e in emb.items()},
            {k: e[test] for k, e in emb.items()},
            args.n_splits,
            args.seed,
        ),
        "fold_10_vs_train_sample_with_artefact": compare(
            x[test],
            x[sample],
            {k: e[test] for k, e in emb.items()},
            {k: e[sample] for k, e in emb.items()},
            args.n_splits,
            args.seed,
        ),
        "fold_10_vs_white_noise": compare(
            x[test], noise, {"psd": emb["psd"][test]}, emb_noise, args.n_splits, args.seed
        ),
    }
    result.update(seconds=round(time.perf_counter() - t_start, 1), load_average=os.getloadavg())
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
