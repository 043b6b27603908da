"""ATen operator calls per training step and per cached sampling step (the CPU proxy for GPU kernel
launches), and CPU time per training step. Prints one JSON object per line.

    python benchmarks/launches.py                                   # 36x256, 12x128, 6x32 (blocks x channels)
    python benchmarks/launches.py --sizes 6x32 --length 200
    python benchmarks/launches.py --compare-with /tmp/old/src       # the same counts and timing for older code

Counting: a ``TorchDispatchMode`` sees every operator that reaches the dispatcher below autograd (forward ops,
the ops autograd runs for backward, optimiser ops), after composite operators have been decomposed, so
``total`` counts each call once whatever it does; ``launching`` leaves out views and other aliasing ops,
which launch nothing on a GPU. Counts do not depend on the batch size or the sequence length.

Phases of a training step (the training loop's own step where the code has one, else the step of
``midtecg.training.loop.train`` as it was before it had one): ``forward`` (diffusion draws, noising, model,
loss), ``backward`` (``loss.backward()``), ``optimizer`` (clipping, Adam, learning-rate schedule, EMA,
loss bookkeeping); ``step`` is the whole step counted in one go.

A cached sampling step is one DDIM step (model evaluation and update) inside ``model.cached_kernels()``:
(ops of a 4-step run - ops of a 2-step run) / 2.

Timing: CPU time (``time.process_time``, one thread) per training step of ``--time`` at ``--time-batch``,
the median of ``--time-steps`` steps after two warm-up steps, each code in its own process; the best of
``--rounds`` rounds. Wall time is reported too; on a shared machine only the CPU time is comparable.

``--compare-with SRC`` runs this script again with ``PYTHONPATH=SRC`` (e.g. the ``src`` folder of an older
commit, ``git archive c3da3ec src | tar -x -C /tmp/old``), for the counts and for the timing, alternating
the two codes round by round; the timing line gives both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import midtecg
from midtecg.diffusion import NoiseSchedule, make_sampler
from midtecg.losses import ObjectiveConfig, training_loss
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.sample import guided_eps_fn
from midtecg.training import loop

PHASES = ("forward", "backward", "optimizer")


class OpCounter(TorchDispatchMode):
    """Counts operator calls by name; ``launching`` excludes views (ops whose output aliases an input)."""

    def __init__(self):
        super().__init__()
        self.ops: Counter = Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        if func.is_view or func.overloadpacket.__name__ in ("detach", "alias", "_unsafe_view"):
            self.views += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def launching(self) -> int:
        return self.total - self.views


def count(fn):
    with OpCounter() as counter:
        result = fn()
    return counter, result


def build(blocks: int, channels: int, length: int, seed: int = 0):
    torch.manual_seed(seed)
    config = SSSDConfig(blocks=blocks, channels=channels, length=length)
    model = SSSDECG(config)
    with torch.no_grad():  # a non-zero output, so that backward does real work
        model.out_conv.weight.normal_(0, 0.01)
    return model, config


class LegacyStep:
    """The training step of midtecg.training.loop.train before it had a TrainStep (commit c3da3ec)."""

    def __init__(self, model, ema, schedule, objective, lr=2e-4, ema_decay=0.999):
        self.model, self.ema, self.schedule, self.objective, self.ema_decay = model, ema, schedule, objective, ema_decay
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        self.running: dict[str, float] = {}

    def forward(self, step, x0, conditions, t, noise, drop):
        x_t = self.schedule.add_noise(x0, noise, t)
        eps_hat = self.model(x_t, t, conditions, drop)
        loss, self.parts = training_loss(eps_hat.float(), noise, x_t, x0, t, self.schedule, self.objective)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        return loss

    def backward(self, loss):
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def update(self, step):
        self.optimizer.step()
        self.scheduler.step()
        loop.update_ema(self.ema, self.model, self.ema_decay, step)
        for key, value in self.parts.items():
            self.running[key] = self.running.get(key, 0.0) + float(value)


def make_step(model, config):
    schedule, objective = NoiseSchedule(), ObjectiveConfig()
    ema = SSSDECG(config)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    if not hasattr(loop, "TrainStep"):
        return LegacyStep(model, ema, schedule, objective), schedule
    optimizer = loop.make_optimizer(model, 2e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    step = loop.TrainStep(model, optimizer, scheduler, schedule, objective, ema=ema, ema_decay=0.999, steps=100)
    return step, schedule


def inputs(config, batch: int, schedule, step: int):
    """A batch and its diffusion draws (no condition dropout), as the loop draws them."""
    gen = torch.Generator().manual_seed(step)
    x0 = 0.3 * torch.randn(batch, config.in_leads, config.length, generator=gen)
    conditions = {"labels": (torch.rand(batch, 71, generator=gen) < 0.05).float()}
    draws = loop.step_generator(0, step, 0, x0.device)
    t = torch.randint(0, schedule.num_steps, (batch,), generator=draws)
    noise = torch.randn(x0.shape, generator=draws)
    return x0, conditions, t, noise, None


def run_step(trainer, step, batch_inputs):
    if isinstance(trainer, LegacyStep):
        loss = trainer.forward(step, *batch_inputs)
        trainer.backward(loss)
        trainer.update(step)
    else:
        trainer(step, *batch_inputs)


def count_training(model, config, batch: int) -> dict:
    trainer, schedule = make_step(model, config)
    for step in range(2):  # optimiser state, caches
        run_step(trainer, step, inputs(config, batch, schedule, step))
    batch_inputs = inputs(config, batch, schedule, 2)
    counters = {}
    counters["forward"], loss = count(lambda: trainer.forward(2, *batch_inputs))
    counters["backward"], _ = count(lambda: trainer.backward(loss))
    counters["optimizer"], _ = count(lambda: trainer.update(2))
    batch_inputs = inputs(config, batch, schedule, 3)
    counters["step"], _ = count(lambda: run_step(trainer, 3, batch_inputs))
    if hasattr(trainer, "read_log"):
        trainer.read_log()  # the step's device-side log, read as the loop reads it on logging steps
    out = {
        "total": {k: c.total for k, c in counters.items()},
        "launching": {k: c.launching for k, c in counters.items()},
    }
    for kind in ("total", "launching"):
        out[kind]["forward_backward"] = out[kind]["forward"] + out[kind]["backward"]
        out[kind]["forward_backward_per_block"] = round(out[kind]["forward_backward"] / config.blocks, 1)
    out["top_ops_step"] = dict(counters["step"].ops.most_common(12))
    return out


def count_sampling(model, config, batch: int) -> dict:
    model.eval().requires_grad_(False)
    labels = {"labels": torch.zeros(batch, 71)}
    eps_fn = guided_eps_fn(model, labels, 1.0)
    shape = (batch, config.in_leads, config.length)
    counters = {}
    with torch.no_grad(), model.cached_kernels():
        make_sampler("ddim", NoiseSchedule(), steps=2).sample(eps_fn, shape, progress=False)  # fills the caches
        for steps in (2, 4):
            sampler = make_sampler("ddim", NoiseSchedule(), steps=steps)
            counters[steps], _ = count(lambda sampler=sampler: sampler.sample(eps_fn, shape, progress=False))
    total = (counters[4].total - counters[2].total) / 2
    launching = (counters[4].launching - counters[2].launching) / 2
    return {
        "total": total,
        "launching": launching,
        "total_per_block": round(total / config.blocks, 1),
        "launching_per_block": round(launching / config.blocks, 1),
    }


def time_training(blocks: int, channels: int, length: int, batch: int, steps: int) -> tuple[float, float]:
    """Median CPU seconds (process time: what this process computed, whatever else the machine runs) and
    wall seconds per training step, after two warm-up steps."""
    model, config = build(blocks, channels, length)
    trainer, schedule = make_step(model, config)
    cpu, wall = [], []
    for step in range(steps + 2):
        batch_inputs = inputs(config, batch, schedule, step)
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run_step(trainer, step, batch_inputs)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu[2:]), statistics.median(wall[2:])


def code_name() -> str:
    return str(Path(midtecg.__file__).resolve().parents[1])


def counts_main(args) -> None:
    for size in args.sizes.split(","):
        blocks, channels = (int(v) for v in size.split("x"))
        model, config = build(blocks, channels, args.length)
        result = {
            "benchmark": "launches",
            "code": code_name(),
            "size": size,
            "blocks": blocks,
            "channels": channels,
            "length": args.length,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        result["train"] = count_training(model, config, args.batch)
        result["sampling_step"] = count_sampling(model, config, args.batch)
        print(json.dumps(result), flush=True)


def rerun(src: str, extra: list[str]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, *extra], env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="36x256,12x128,6x32", help="comma list of BLOCKSxCHANNELS")
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=2, help="batch of the counted steps")
    parser.add_argument("--time", default="12x128", help="BLOCKSxCHANNELS to time ('' to skip)")
    parser.add_argument("--time-batch", type=int, default=8)
    parser.add_argument("--time-steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds (each code once per round)")
    parser.add_argument("--compare-with", metavar="SRC", help="also run the code in SRC (a package's src folder)")
    parser.add_argument("--only-time", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    if args.only_time:
        blocks, channels = (int(v) for v in args.time.split("x"))
        cpu, wall = time_training(blocks, channels, args.length, args.time_batch, args.time_steps)
        print(json.dumps({"code": code_name(), "cpu_s": cpu, "wall_s": wall}))
        return
    if args.sizes:
        counts_main(args)
        if args.compare_with:
            for line in rerun(
                args.compare_with,
                ["--sizes", args.sizes, "--length", str(args.length), "--batch", str(args.batch), "--time", ""],
            ):
                print(json.dumps(line), flush=True)
    if args.time:
        timing_args = [
            "--only-time",
            "--time",
            args.time,
            "--length",
            str(args.length),
            "--time-batch",
            str(args.time_batch),
            "--time-steps",
            str(args.time_steps),
        ]
        codes = {"this": str(Path(__file__).resolve().parents[1] / "src")}
        if args.compare_with:
            codes["other"] = args.compare_with
        runs: dict[str, list[dict]] = {name: [] for name in codes}
        for _ in range(args.rounds):
            for name, src in codes.items():
                runs[name].append(rerun(src, timing_args)[0])
        cpu = {name: min(r["cpu_s"] for r in v) for name, v in runs.items()}
        result = {
            "benchmark": "launches-time",
            "size": args.time,
            "length": args.length,
            "batch": args.time_batch,
            "threads": 1,
            "steps_per_round": args.time_steps,
            "rounds": args.rounds,
            "code": {name: src for name, src in codes.items()},
            "cpu_ms_per_step": {name: round(1e3 * v, 1) for name, v in cpu.items()},
            "cpu_ms_all_rounds": {name: [round(1e3 * r["cpu_s"], 1) for r in v] for name, v in runs.items()},
            "wall_ms_all_rounds": {name: [round(1e3 * r["wall_s"], 1) for r in v] for name, v in runs.items()},
        }
        if args.compare_with:
            result["cpu_speedup"] = round(cpu["other"] / cpu["this"], 2)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
