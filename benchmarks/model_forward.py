"""Time the SSSD-ECG denoiser: S4 kernel generation, forward, forward + backward, cached-kernel forward.

Prints one JSON object. Examples::

    python benchmarks/model_forward.py --config small --variant s4
    python benchmarks/model_forward.py --config full --batch 1 --variant s4d --repeats 2
    python benchmarks/model_forward.py --config full --batch 32 --device cuda --dtype bf16 --compile

``--config full`` is the published model (256 channels, 36 blocks, S4 state 64, length 1000);
``--config small`` is 64 channels, 4 blocks, length 1000.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

import torch

from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG

CONFIGS = {
    "full": {},
    "small": dict(channels=64, blocks=4),
    "tiny": dict(channels=16, blocks=2, length=128, state_size=8),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, repeats: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return {"min_ms": round(min(times), 3), "median_ms": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--variant", default="s4", choices=["s4", "s4d", "s4d-lin"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 = autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (forward/backward)")
    parser.add_argument("--checkpoint-activations", action="store_true", help="recompute block activations in backward")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: kernel,forward,train,cached")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    skip = {s for s in args.skip.split(",") if s}
    torch.manual_seed(0)
    config = SSSDConfig(s4_variant=args.variant, **CONFIGS[args.config])
    start = time.perf_counter()
    model = SSSDECG(config)
    build_s = time.perf_counter() - start
    model.to(device)
    model.set_activation_checkpointing(args.checkpoint_activations)
    with torch.no_grad():  # non-zero output so that backward does real work
        model.out_conv.weight.normal_(0, 0.01)
    step_model = torch.compile(model) if args.compile else model

    b, length = args.batch, config.length
    x = torch.randn(b, config.in_leads, length, device=device)
    t = torch.randint(0, 200, (b,), device=device)
    cond = {g.name: (torch.rand(b, g.size, device=device) < 0.1).float() for g in config.condition_groups}
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    result: dict = {
        "benchmark": "model_forward",
        "config": args.config,
        "model": config.to_dict(),
        "variant": args.variant,
        "batch": b,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "dtype": args.dtype,
        "compile": args.compile,
        "activation_checkpointing": args.checkpoint_activations,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "build_s": round(build_s, 3),
    }

    layers = model.s4_layers()
    if "kernel" not in skip:
        layer = layers[0]

        def kernel_only():
            with torch.no_grad():
                layer.kernel_fft(length)

        result["kernel_one_layer"] = _time(kernel_only, device, args.repeats, args.warmup)
        result["kernel_one_layer"]["layers"] = len(layers)

        def kernel_train():
            layer.kernel_fft(length).abs().sum().backward()

        result["kernel_one_layer_fwd_bwd"] = _time(kernel_train, device, args.repeats, args.warmup)

    if "forward" not in skip:

        def forward():
            with torch.no_grad(), autocast():
                step_model(x, t, cond)

        result["forward"] = _time(forward, device, args.repeats, args.warmup)

    if "cached" not in skip:

        def cached():
            with torch.no_grad(), autocast():
                model(x, t, cond)

        with model.cached_kernels():
            result["forward_cached_kernels"] = _time(cached, device, args.repeats, args.warmup)

    if "train" not in skip:

        def train_step():
            with autocast():
                out = step_model(x, t, cond)
            out.float().square().mean().backward()

        result["forward_backward"] = _time(train_step, device, args.repeats, args.warmup)
        result["forward_backward"]["samples_per_s"] = round(b * 1e3 / result["forward_backward"]["min_ms"], 2)

    if device.type == "cuda":
        result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else:
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
