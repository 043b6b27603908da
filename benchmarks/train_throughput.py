"""Training throughput of the SSSD-ECG denoiser: one full optimiser step (noising, forward, loss, backward,
Adam, EMA) on random ECG-shaped data. Prints one JSON object.

    python benchmarks/train_throughput.py --config tiny --batch 8 --steps 5
    python benchmarks/train_throughput.py --config full --batch 64 --device cuda --bf16 --compile

Reference (the SSSD-ECG code as shipped, fp32, one H200, batch 64): 837 ms per step, 76.5 samples/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch

from midtecg.diffusion import NoiseSchedule
from midtecg.losses import ObjectiveConfig, training_loss
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.training.step import ema_weights, make_optimizer, update_ema

CONFIGS = {"full": {}, "small": dict(channels=64, blocks=4), "tiny": dict(channels=32, blocks=4)}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--variant", default="s4", choices=["s4", "s4d"])
    parser.add_argument("--channels", type=int, help="override the preset's channels")
    parser.add_argument("--blocks", type=int, help="override the preset's residual blocks")
    parser.add_argument("--objective", default="eps", choices=["eps", "midt"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    sizes = {k: v for k, v in (("channels", args.channels), ("blocks", args.blocks)) if v}
    config = SSSDConfig(s4_variant=args.variant, **{**CONFIGS[args.config], **sizes})
    model = SSSDECG(config).to(device)
    ema = SSSDECG(config).to(device).requires_grad_(False)
    step_model = torch.compile(model) if args.compile else model
    optimizer = make_optimizer(model, 2e-4)
    ema_weight = ema_weights(0.999, args.steps + 2, device)
    schedule = NoiseSchedule()
    objective = ObjectiveConfig(kind=args.objective)
    x0 = torch.randn(args.batch, config.in_leads, config.length, device=device) * 0.3
    labels = (torch.rand(args.batch, 71, device=device) < 0.05).float()

    def step(i: int) -> None:
        t = torch.randint(0, schedule.num_steps, (args.batch,), device=device)
        noise = torch.randn_like(x0)
        x_t = schedule.add_noise(x0, noise, t)
        with torch.autocast(device.type, torch.bfloat16, enabled=args.bf16):
            eps_hat = step_model(x_t, t, {"labels": labels})
        loss, _ = training_loss(eps_hat.float(), noise, x_t, x0, t, schedule, objective)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update_ema(ema, model, ema_weight[i])

    for i in range(2):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) / args.steps * 1e3
    result = {
        "benchmark": "train_throughput",
        "config": args.config,
        "model": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "objective": args.objective,
        "batch_size": args.batch,
        "ms_per_step": round(ms, 2),
        "samples_per_s": round(args.batch / ms * 1e3, 3),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": "bf16-autocast" if args.bf16 else "fp32",
        "compile": args.compile,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
