"""GPU speed of the published SSSD-ECG (36 blocks x 256 channels, length 1000) in one call: a training step at
batch 64 and 8, eager vs ``torch.compile`` vs CUDA graphs, and 200-step sampling of 256 ECGs. Prints one JSON
object per measurement (and writes them to ``--out``/gpu_speed.jsonl as they come, so a run cut short keeps
what it measured).

    python benchmarks/gpu_speed.py --out benchmarks/results            # on a GPU, about 10 minutes
    python benchmarks/gpu_speed.py --tiny --device cpu --skip compile  # smoke test of the script itself

Targets (issue 13): training step <= 84 ms and <= 40 GiB at batch 64 (the reference code: 837 ms); sampling
>= 24 ECG/s (the reference: 1.19 ECG/s). Measurements, in order (the budget skips the rest when it runs out):

``sync``       five eager training steps under ``torch.cuda.set_sync_debug_mode("error")``: any host
               synchronisation inside the step fails it (CUDA only)
``train``      ms per optimiser step (bf16 autocast, the loop's ``TrainStep``: noising, forward, loss,
               backward, Adam, EMA), peak memory; for batch 64 and 8, eager and CUDA graph, then batch 64
               with activation checkpointing forced on and off
``launches``   CUDA kernels per eager step and per graph replay (profiler), batch 8
``sample``     200-step DDPM sampling of 256 ECGs in one batch, eager and CUDA graph (and the largest
               difference between the two outputs)
``compile``    the same training step and sampling with ``torch.compile`` (slow to compile: last)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

from midtecg.diffusion import NoiseSchedule, make_sampler
from midtecg.losses import ObjectiveConfig
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.sample import graphed_eps_fn, guided_eps_fn
from midtecg.training.loop import step_generator
from midtecg.training.step import TrainStep, activation_checkpointing, make_optimizer

FULL = dict(blocks=36, channels=256, length=1000)
TINY = dict(blocks=2, channels=16, length=64, state_size=8)


class Run:
    def __init__(self, args):
        self.args, self.started = args, time.perf_counter()
        self.device = torch.device(args.device)
        self.out = Path(args.out) / "gpu_speed.jsonl" if args.out else None
        if self.out:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        self.sizes = TINY if args.tiny else FULL
        self.batches = (2, 1) if args.tiny else (64, 8)
        self.steps = 3 if args.tiny else args.steps
        self.n_ecgs, self.sample_steps = (4, 3) if args.tiny else (256, 200)

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.started)

    def emit(self, record: dict) -> None:
        record = {"benchmark": "gpu_speed", **record, "elapsed_s": round(time.perf_counter() - self.started, 1)}
        line = json.dumps(record)
        print(line, flush=True)
        if self.out:
            with self.out.open("a") as handle:
                handle.write(line + "\n")

    def phase(self, name: str, fn, *args, **kwargs) -> None:
        if name.split(":")[0] in self.args.skip:
            return
        if self.left() < self.args.reserve_s:
            self.emit({"phase": name, "skipped": f"budget: {self.left():.0f} s left"})
            return
        try:
            fn(*args, **kwargs)
        except Exception as error:  # record and go on: the other measurements still count
            self.emit(
                {
                    "phase": name,
                    "error": f"{type(error).__name__}: {error}",
                    "trace": traceback.format_exc(limit=4)[-1500:],
                }
            )
        finally:
            self.free()

    def free(self) -> None:
        torch._dynamo.reset()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        return round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2) if self.device.type == "cuda" else None

    # ---- the model and the step --------------------------------------------------------------------------
    _weights: dict = {}

    def model(self, null_conditions: bool = False) -> SSSDECG:
        """The model with the same weights every time (initialised once: S4 init takes ~0.1 s per layer)."""
        config = SSSDConfig(null_conditions=null_conditions, **self.sizes)
        if null_conditions not in self._weights:
            torch.manual_seed(0)
            model = SSSDECG(config)
            with torch.no_grad():  # a non-zero output, so that backward does real work
                model.out_conv.weight.normal_(0, 0.01)
            self._weights[null_conditions] = model.state_dict()
        with torch.device("meta"):
            model = SSSDECG(config)
        model.to_empty(device=self.device)
        model.load_state_dict(self._weights[null_conditions])
        return model

    def trainer(self, batch: int, *, compile=False, cuda_graph=False, checkpoint="auto") -> tuple[TrainStep, SSSDECG]:
        model = self.model()
        model.set_activation_checkpointing(activation_checkpointing(checkpoint, self.device, model.config, batch))
        ema = self.model().requires_grad_(False)
        optimizer = make_optimizer(model, 2e-4)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        trainer = TrainStep(
            model,
            optimizer,
            scheduler,
            NoiseSchedule(),
            ObjectiveConfig(),
            ema=ema,
            ema_decay=0.999,
            steps=10_000,
            grad_clip=1.0,
            bf16=self.device.type == "cuda",
            log_capacity=1000,
            compile=compile,
            cuda_graph=cuda_graph,
        )
        return trainer, model

    def batch(self, model: SSSDECG, batch: int, step: int):
        cfg = model.config
        gen = step_generator(0, step, 0, self.device)
        x0 = 0.3 * torch.randn(batch, cfg.in_leads, cfg.length, generator=gen, device=self.device)
        labels = (torch.rand(batch, 71, generator=gen, device=self.device) < 0.05).float()
        t = torch.randint(0, 200, (batch,), generator=gen, device=self.device)
        noise = torch.randn(x0.shape, generator=gen, device=self.device)
        return x0, {"labels": labels}, t, noise, None

    def time_steps(self, trainer: TrainStep, model: SSSDECG, batch: int, warmup: int) -> dict:
        batches = [self.batch(model, batch, s) for s in range(4)]
        for step in range(warmup):
            trainer(step, *batches[step % 4])
        trainer.read_log()
        self.sync()
        self.reset_memory()
        times = []
        for i in range(self.steps):
            start = time.perf_counter()
            trainer(warmup + i, *batches[i % 4])
            self.sync()
            times.append(time.perf_counter() - start)
        log = trainer.read_log()
        return {
            "ms_per_step": round(1e3 * statistics.median(times), 2),
            "ms_min": round(1e3 * min(times), 2),
            "samples_per_s": round(batch / statistics.median(times), 1),
            "peak_memory_gib": self.peak_gib(),
            "loss": round(log["loss"], 5),
            "activation_checkpointing": model.checkpoint_activations,
        }

    # ---- measurements --------------------------------------------------------------------------------------
    def env(self) -> None:
        cuda = self.device.type == "cuda"
        self.emit(
            {
                "phase": "env",
                "device": torch.cuda.get_device_name(self.device) if cuda else platform.processor(),
                "memory_gib": round(torch.cuda.get_device_properties(self.device).total_memory / 2**30, 1)
                if cuda
                else None,
                "torch": torch.__version__,
                "python": sys.version.split()[0],
                "model": self.sizes,
            }
        )

    def sync_check(self) -> None:
        if self.device.type != "cuda":
            self.emit({"phase": "sync", "skipped": "CUDA only"})
            return
        batch = self.batches[1]
        record = {"phase": "sync", "batch": batch}
        for mode in ("eager", "graph"):
            trainer, model = self.trainer(batch, cuda_graph=mode == "graph")
            batches = [self.batch(model, batch, s) for s in range(2)]
            first = TrainStep.WARMUP_STEPS + 1 if mode == "graph" else 1  # kernel constants, optimiser state, capture
            for step in range(first):
                trainer(step, *batches[step % 2])
            trainer.read_log()
            self.sync()
            torch.cuda.set_sync_debug_mode("error")  # raises on any synchronising call
            try:
                for step in range(first, first + 5):
                    trainer(step, *batches[step % 2])
            finally:
                torch.cuda.set_sync_debug_mode("default")
            record[f"{mode}_steps_without_host_synchronisation"] = 5
            record[f"{mode}_loss"] = trainer.read_log()["loss"]
            del trainer, model
            self.free()
        self.emit(record)

    def train(self, batch: int, mode: str, checkpoint="auto") -> None:
        if mode == "graph" and self.device.type != "cuda":
            self.emit({"phase": f"train:{mode}", "batch": batch, "skipped": "CUDA only"})
            return
        trainer, model = self.trainer(
            batch, compile=mode == "compile", cuda_graph=mode == "graph", checkpoint=checkpoint
        )
        warmup = TrainStep.WARMUP_STEPS + 2 if mode == "graph" else 3
        start = time.perf_counter()
        result = self.time_steps(trainer, model, batch, warmup)
        self.emit(
            {
                "phase": f"train:{mode}",
                "batch": batch,
                "checkpoint_setting": str(checkpoint),
                "warmup_s": round(time.perf_counter() - start, 1),
                "steps": self.steps,
                **result,
                "target_ms": 84 if batch == 64 else None,
                "reference_ms": 837 if batch == 64 else None,
            }
        )

    def launches(self) -> None:
        if self.device.type != "cuda":
            self.emit({"phase": "launches", "skipped": "CUDA only"})
            return
        batch = self.batches[1]
        out = {"phase": "launches", "batch": batch}
        for mode in ("eager", "graph"):
            trainer, model = self.trainer(batch, cuda_graph=mode == "graph")
            batches = [self.batch(model, batch, s) for s in range(2)]
            for step in range(TrainStep.WARMUP_STEPS + 2):
                trainer(step, *batches[step % 2])
            self.sync()
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                trainer(10, *batches[0])
                self.sync()
            kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            out[f"{mode}_kernels_per_step"] = len(kernels)
            trainer.read_log()
            del trainer, model
            self.free()
        self.emit(out)

    def sample(self, mode: str) -> None:
        if mode == "graph" and self.device.type != "cuda":
            self.emit({"phase": f"sample:{mode}", "skipped": "CUDA only"})
            return
        model = self.model(null_conditions=True).eval().requires_grad_(False)
        step_model = torch.compile(model) if mode == "compile" else model
        n, shape = self.n_ecgs, (self.n_ecgs, model.config.in_leads, model.config.length)
        labels = {
            "labels": (torch.rand(n, 71, generator=torch.Generator().manual_seed(0)) < 0.05).float().to(self.device)
        }
        sampler = make_sampler(
            "ddpm" if self.sample_steps == 200 else "ddim",
            NoiseSchedule(),
            steps=None if self.sample_steps == 200 else self.sample_steps,
        )
        cuda = self.device.type == "cuda"
        autocast = torch.autocast(self.device.type, torch.bfloat16, enabled=cuda, cache_enabled=mode != "graph")
        self.reset_memory()
        with torch.no_grad(), model.cached_kernels(), autocast:
            eps_fn = guided_eps_fn(step_model, labels, 1.0)
            start = time.perf_counter()
            if mode == "graph":
                eps_fn = graphed_eps_fn(eps_fn, shape, self.device)
            else:
                eps_fn(torch.zeros(shape, device=self.device), torch.zeros(n, dtype=torch.long, device=self.device))
            self.sync()
            prepare_s = time.perf_counter() - start
            start = time.perf_counter()
            x = sampler.sample(
                eps_fn, shape, generator=torch.Generator(self.device).manual_seed(1), device=self.device, progress=False
            )
            self.sync()
            seconds = time.perf_counter() - start
        record = {
            "phase": f"sample:{mode}",
            "n": n,
            "steps": sampler.num_steps,
            "batch": n,
            "seconds": round(seconds, 2),
            "ecg_per_s": round(n / seconds, 2),
            "prepare_s": round(prepare_s, 1),
            "peak_memory_gib": self.peak_gib(),
            "target_ecg_per_s": 24,
            "reference_ecg_per_s": 1.19,
        }
        if mode != "eager":
            record["max_abs_diff_vs_eager"] = (
                float((x - self.eager_sample).abs().max()) if self.eager_sample is not None else None
            )
        else:
            self.eager_sample = x
        self.emit(record)

    eager_sample = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="", help="folder for gpu_speed.jsonl (appended)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke test of the script")
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per measurement")
    parser.add_argument("--budget-s", type=float, default=560, help="stop starting measurements after this")
    parser.add_argument("--reserve-s", type=float, default=45, help="time a measurement needs at least")
    parser.add_argument("--skip", default="", help="comma list of phases to skip: sync,train,launches,sample,compile")
    args = parser.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    run = Run(args)
    run.phase("env", run.env)
    run.phase("sync", run.sync_check)
    big, small = run.batches
    for batch in (big, small):
        run.phase("train", run.train, batch, "eager")
        run.phase("train", run.train, batch, "graph")
    run.phase("launches", run.launches)
    run.phase("sample", run.sample, "eager")
    run.phase("sample", run.sample, "graph")
    run.phase("train", run.train, big, "graph", checkpoint=True)
    run.phase("train", run.train, big, "graph", checkpoint=False)
    if "compile" not in args.skip:
        run.phase("compile", run.train, big, "compile")
        run.phase("compile", run.sample, "compile")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
