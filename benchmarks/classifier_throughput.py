"""Throughput of the evaluation classifier (XResNet1d): training steps and sliding-window inference.

Prints one JSON object: train samples/s (2.5 s crops, forward + backward + AdamW step), inference
records/s (10 s records, sliding windows with max aggregation, as ``predict`` runs them) and windows/s,
device, model variant, batch size, parameter count, torch version and peak memory.

    python benchmarks/classifier_throughput.py --model small
    python benchmarks/classifier_throughput.py --model xresnet1d101 --device cuda --batch-size 128
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import torch

from midtecg.evaluation.classifier import (
    ClassifierTrainConfig,
    _autocast,
    _random_crops,
    build_classifier,
    predict,
    resolve_device,
    sliding_window_starts,
)
from midtecg.models.xresnet1d import count_parameters


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small", choices=["small", "xresnet1d50", "xresnet1d101"])
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128 on CUDA, 32 on CPU")
    p.add_argument("--eval-batch-size", type=int, default=None, help="windows per forward (default 4 x batch)")
    p.add_argument("--steps", type=int, default=None, help="timed training steps (default 30 CUDA, 5 CPU)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--n-records", type=int, default=None, help="records for the inference timing")
    p.add_argument("--classes", type=int, default=71)
    p.add_argument("--length", type=int, default=1000, help="record length in samples (100 Hz)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")
    p.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    bs = args.batch_size or (128 if cuda else 32)
    eval_bs = args.eval_batch_size or 4 * bs
    steps = args.steps or (30 if cuda else 5)
    n_records = args.n_records or (4 * bs if cuda else bs)
    amp = not args.no_amp

    cfg = ClassifierTrainConfig(model=args.model, batch_size=bs, device=str(device))
    torch.manual_seed(0)
    model = build_classifier(cfg, 12, args.classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(0)
    records = torch.randn(max(bs, n_records), 12, args.length) * 0.3
    labels = (torch.rand(max(bs, n_records), args.classes) < 0.1).float()
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)

    def train_step() -> None:
        idx = torch.randint(0, len(records), (bs,), generator=gen)
        xb = _random_crops(records[idx], cfg.crop_samples, gen).to(device, non_blocking=cuda)
        yb = labels[idx].to(device, non_blocking=cuda)
        with _autocast(device, amp):
            logits = model(xb)
        loss = loss_fn(logits.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    for _ in range(args.warmup):
        train_step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step()
    _sync(device)
    train_seconds = time.perf_counter() - t0

    x_eval = records[:n_records].numpy()
    predict(model, x_eval[: max(1, eval_bs // 7)], batch_size=eval_bs, amp=amp)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    predict(model, x_eval, batch_size=eval_bs, amp=amp)
    _sync(device)
    infer_seconds = time.perf_counter() - t0
    n_windows = len(sliding_window_starts(args.length, cfg.crop_samples, cfg.crop_samples // 2))

    if cuda:
        peak = {"peak_cuda_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        peak = {"peak_rss_mib": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)}
    result = {
        "model": args.model,
        "parameters": count_parameters(model),
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.processor() or 'unknown'})",
        "threads": torch.get_num_threads(),
        "bf16_autocast": bool(cuda and amp),
        "batch_size": bs,
        "eval_batch_size_windows": eval_bs,
        "crop_samples": cfg.crop_samples,
        "record_samples": args.length,
        "windows_per_record": n_windows,
        "train_steps": steps,
        "train_samples_per_s": round(steps * bs / train_seconds, 2),
        "inference_records_per_s": round(n_records / infer_seconds, 2),
        "inference_windows_per_s": round(n_records * n_windows / infer_seconds, 2),
        "torch": torch.__version__,
        **peak,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
