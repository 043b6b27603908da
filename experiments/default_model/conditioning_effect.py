"""Does a demographics-conditioned model follow its conditions? Prints one JSON object.

For each pair of requests that differ in one condition only (heart rate 55 vs 110 bpm, age 25 vs 75,
male vs female; labels NORM,SR), generate N ECGs each with the same seed and measure them with midtecg's own
R-peak detector and simple amplitude features:

- heart rate (bpm, median RR of the detected R peaks);
- QRS amplitude: mean peak-to-peak of V2-V4 in mV (larger in men and in the young, in real ECGs).

    python experiments/default_model/conditioning_effect.py                 # the built-in model
    python experiments/default_model/conditioning_effect.py --model runs/x --n 32 --sampler ddim --steps 50
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from midtecg.data.heart_rate import heart_rate_bpm
from midtecg.data.leads import WFDB_LEADS
from midtecg.generate import DEFAULT_MODEL, conditions_from_request
from midtecg.sample import load_generator, sample

PAIRS = {
    "heart_rate": ({"heart_rate": 55}, {"heart_rate": 110}),
    "age": ({"age": 25}, {"age": 75}),
    "sex": ({"sex": "male"}, {"sex": "female"}),
}
BASE = {"labels": "NORM,SR", "age": 50, "sex": "male", "heart_rate": 70}
CHEST = [WFDB_LEADS.index(lead) for lead in ("V2", "V3", "V4")]


def features(signals: np.ndarray, fs: int) -> dict:
    rates = heart_rate_bpm(signals, fs)
    qrs = np.ptp(signals[:, CHEST], axis=-1).mean(axis=1)
    return {
        "heart_rate_mean": float(np.nanmean(rates)),
        "heart_rate_sd": float(np.nanstd(rates)),
        "heart_rate_missing": int(np.isnan(rates).sum()),
        "qrs_amplitude_v2_v4_mv": float(qrs.mean()),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--sampler", default="ddpm")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = load_generator(args.model, device="cpu")
    result = {"model": args.model, "n": args.n, "sampler": args.sampler, "steps": args.steps or 200, "base": BASE}
    start = time.perf_counter()
    for name, (low, high) in PAIRS.items():
        for tag, change in (("low", low), ("high", high)):
            request = conditions_from_request(n=args.n, **{**BASE, **change})
            ecgs = sample(generator, request, sampler=args.sampler, steps=args.steps, seed=args.seed, progress=False)
            result.setdefault(name, {})[tag] = {"request": change, **features(ecgs.signals, ecgs.fs)}
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
