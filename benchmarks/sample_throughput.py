"""Sampling throughput: ECGs per second for a full sampler run (200 ancestral steps by default), with the
S4 kernels computed once for all steps. Prints one JSON object.

    python benchmarks/sample_throughput.py --config tiny --n 4
    python benchmarks/sample_throughput.py --config full --n 256 --batch 256 --device cuda --bf16

Reference (the SSSD-ECG code as shipped, fp32, one H200): 256 ECGs with 200 steps in 215 s (1.19 ECG/s).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch

from midtecg.diffusion import NoiseSchedule, make_sampler
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.sample import guided_eps_fn

CONFIGS = {"full": {}, "small": dict(channels=64, blocks=4), "tiny": dict(channels=32, blocks=4)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--variant", default="s4", choices=["s4", "s4d"])
    parser.add_argument("--channels", type=int, help="override the preset's channels")
    parser.add_argument("--blocks", type=int, help="override the preset's residual blocks")
    parser.add_argument("--n", type=int, default=4, help="ECGs to generate")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: all at once)")
    parser.add_argument("--sampler", default="ddpm", choices=["ddpm", "ddim", "dpm++2m"])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    sizes = {k: v for k, v in (("channels", args.channels), ("blocks", args.blocks)) if v}
    config = SSSDConfig(s4_variant=args.variant, **{**CONFIGS[args.config], **sizes})
    model = SSSDECG(config).to(device).eval().requires_grad_(False)
    sampler = make_sampler(args.sampler, NoiseSchedule(), steps=args.steps)
    batch = args.batch or args.n
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    with torch.no_grad(), model.cached_kernels(), torch.autocast(device.type, torch.bfloat16, enabled=args.bf16):
        for first in range(0, args.n, batch):
            size = min(batch, args.n - first)
            labels = torch.zeros(size, 71, device=device)
            sampler.sample(
                guided_eps_fn(model, {"labels": labels}, 1.0),
                (size, config.in_leads, config.length),
                generator=torch.Generator(device).manual_seed(first),
                device=device,
                progress=False,
            )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ) / 2**20
    result = {
        "benchmark": "sample_throughput",
        "config": args.config,
        "model": config.to_dict(),
        "sampler": args.sampler,
        "steps": args.steps or 200,
        "n": args.n,
        "batch_size": batch,
        "seconds": round(seconds, 2),
        "ecg_per_s": round(args.n / seconds, 4),
        "peak_memory_mb": round(peak, 1),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": "bf16-autocast" if args.bf16 else "fp32",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
