"""Cost of one noise draw for a batch of ECGs: the per-ECG counter streams that ``midtecg.sample`` uses
(``IndexedNoise``), one ``torch.randn`` for the whole batch (what the samplers drew before, per batch), and a
loop over one ``torch.Generator`` per ECG (the other way to make rows independent of the batch). For scale,
one forward pass of the built-in model on the same batch. Prints one JSON object (times in ms: median and
best of ``--repeats``).

    python benchmarks/noise_draw.py                        # B = 64 ECGs x 8 leads x 1000 samples, 1 thread
    python benchmarks/noise_draw.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from midtecg.diffusion import IndexedNoise


def timed(fn, repeats: int, device: torch.device) -> dict:
    fn(0)
    times = []
    for draw in range(1, repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn(draw)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {"median_ms": round(1e3 * statistics.median(times), 3), "best_ms": round(1e3 * min(times), 3)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--leads", type=int, default=8)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-model", action="store_true", help="skip the built-in model's forward pass")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = (args.batch, args.leads, args.length)
    indexed = IndexedNoise(0, range(args.batch), device)
    generator = torch.Generator(device).manual_seed(0)
    row_generators = [torch.Generator(device).manual_seed(i) for i in range(args.batch)]
    result = {
        "benchmark": "noise_draw",
        "shape": list(shape),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "indexed_noise": timed(lambda d: indexed(shape, d), args.repeats, device),
        "one_randn": timed(lambda d: torch.randn(shape, generator=generator, device=device), args.repeats, device),
        "randn_per_row": timed(
            lambda d: torch.stack([torch.randn(shape[1:], generator=g, device=device) for g in row_generators]),
            args.repeats,
            device,
        ),
    }
    if not args.no_model:
        from midtecg.generate import DEFAULT_MODEL
        from midtecg.sample import load_generator

        model = load_generator(DEFAULT_MODEL, device).model
        x = torch.zeros(shape, device=device)
        t = torch.zeros(args.batch, dtype=torch.long, device=device)
        cond = {g.name: torch.zeros(args.batch, g.size, device=device) for g in model.config.condition_groups}
        with torch.no_grad(), model.cached_kernels():
            result["model_forward"] = timed(lambda d: model(x, t, cond), max(3, args.repeats // 10), device)
    result["cpu"] = platform.processor() or platform.machine()
    result["torch"] = torch.__version__
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
