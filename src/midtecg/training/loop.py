"""The training loop: one function, read top to bottom; one optimisation step is ``midtecg.training.step``.

Everything random in a step (which records, which diffusion times, which noise, which conditions are
dropped) is drawn from generators seeded by (seed, step, rank), so a run resumed from a checkpoint
continues exactly as if it had never stopped, and every rank of a distributed run draws its own batch.
``train.batch_size`` is the batch of one process; the global batch is that times the world size.

The step never makes the host wait for the device (see ``midtecg.training.step``); the loop reads the losses
on logging steps only.

``train.max_cpu_seconds`` stops a run once the process has spent that much CPU time in the loop (summed over
resumes; kept in each checkpoint's training.json as ``cpu_s``): it validates, checks, checkpoints and returns,
and resuming a run whose budget is spent returns at once. For CPU studies at a fixed budget (one thread per run).
``midtecg.training.monitor`` describes the warnings written to log.csv.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

import midtecg
from midtecg.data.cache import load_prepared
from midtecg.data.conditions import ConditionEncoder
from midtecg.data.leads import MODEL_LEADS, to_model_leads
from midtecg.data.scaling import lead_scale
from midtecg.device import resolve_device
from midtecg.diffusion import NoiseSchedule, Parameterization
from midtecg.losses import ObjectiveConfig, training_loss
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.training import monitor
from midtecg.training.checkpoint import has_checkpoints, latest_checkpoint, resume_training_state, save_checkpoint
from midtecg.training.config import ExperimentConfig
from midtecg.training.step import TrainStep, activation_checkpointing, lr_factor, make_optimizer, to_device

LOG_COLUMNS = (
    "step",
    "loss",
    "mse_loss",
    "mel_loss",
    "lr",
    "val_loss",
    "val_reference",
    "sample_amplitude_ratio",
    "steps_per_s",
    "elapsed_s",
    "cpu_s",
    "warning",
)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> tuple[Distributed, bool]:
    """Join the process group that torchrun describes in the environment (a no-op without torchrun).
    Returns the ranks and whether this call created the group (then ``train`` also destroys it)."""
    import os

    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return Distributed(), False
    created = not dist.is_initialized()
    if created:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))), created


def pick_device(name: str, ddp: Distributed) -> torch.device:
    """``train.device`` through ``midtecg.device.resolve_device``; a distributed CUDA run takes its local GPU."""
    if name in ("auto", "cuda") and ddp.world > 1 and torch.cuda.is_available():
        name = f"cuda:{ddp.local_rank}"
    device = resolve_device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def check_in_sync(model: torch.nn.Module) -> None:
    """Raise if the ranks of a distributed run hold different weights (a broken gradient all-reduce)."""
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()
    gathered = [torch.zeros_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sums)  # gloo and nccl both accept CPU float64 here via the default group
    for rank, other in enumerate(gathered):
        if not torch.equal(other, gathered[0]):
            raise RuntimeError(f"rank {rank} holds different weights from rank 0: the distributed run diverged")


@lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(step: int, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """Record indices of one rank's batch at ``step``: a new permutation of the data every epoch."""
    start = (step * world + rank) * batch_size
    positions = np.arange(start, start + batch_size)
    epochs, offsets = np.divmod(positions, n)
    return np.array([_epoch_order(n, seed, int(e))[o] for e, o in zip(epochs, offsets)])


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step * 1_009 + rank)


def generator_config(
    config: ExperimentConfig,
    model_config: SSSDConfig,
    encoder: ConditionEncoder,
    schedule: NoiseSchedule,
    manifest: dict,
    param: Parameterization | None = None,
    scale: np.ndarray | None = None,
    objective: ObjectiveConfig | None = None,
) -> dict:
    """What a checkpoint's config.json holds: everything needed to rebuild and sample the generator.
    ``parameterization`` and ``signal.lead_scale`` are written only when they differ from the defaults
    (epsilon prediction, millivolts), so such checkpoints read exactly as before."""
    signal = {"fs": manifest["rate"], "length": manifest["length"], "leads": "I,V1-V6,aVF"}
    if scale is not None:
        signal["lead_scale"] = [float(v) for v in scale]
    out = {
        "midtecg_version": midtecg.__version__,
        "model": model_config.to_dict(),
        "conditions": encoder.to_dict(),
        "schedule": schedule.to_dict(),
        "signal": signal,
        "experiment": config.to_dict(),
    }
    if param is not None and param.prediction != "eps":
        out["parameterization"] = param.to_dict()
    if objective is not None:
        out["objective"] = objective.to_dict()
    return out


def _model_inputs(signals: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(to_model_leads(np.asarray(signals, dtype=np.float32))))
    if not torch.isfinite(x).all():
        raise ValueError("the prepared cache holds NaN or inf samples; run `midtecg prepare` again")
    return x


def _draw(x0: torch.Tensor, param: Parameterization, dropout: float, groups, gen: torch.Generator):
    batch = x0.shape[0]
    t = param.draw_times(batch, gen, x0.device)
    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    drop = None
    if dropout > 0:
        drop = {g.name: torch.rand(batch, generator=gen, device=x0.device) < dropout for g in groups}
    return t, noise, drop


@torch.no_grad()
def validation_loss(
    model, x_val, cond_val, param, objective, batch_size, batches, seed, device, autocast, signal_scale=None
):
    """Mean loss over fixed batches with fixed noise, so values are comparable across a run."""
    model.eval()
    losses = []
    for x0, conditions, t, noise, x_t in monitor.validation_batches(
        x_val, cond_val, param, batch_size, batches, seed, device
    ):
        with autocast:
            out = model(x_t, param.model_time(t), conditions)
        loss, _ = training_loss(out.float(), noise, x_t, x0, t, param, objective, signal_scale)
        losses.append(loss.item())
    model.train()
    return float(np.mean(losses))


def train(config: ExperimentConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a generator as ``config`` says; returns the newest checkpoint folder."""
    ddp, owns_group = setup_distributed()
    tc = config.train
    device = pick_device(tc.device, ddp)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed + ddp.rank)
    run_dir = Path(config.out_dir)

    # Data: the whole training split lives in host memory; batches are gathered by index.
    if not config.data.cache:
        raise ValueError("config [data] cache is empty: point it at a folder written by `midtecg prepare`")
    train_data = load_prepared(config.data.cache, split=list(config.data.train_folds))
    val_data = load_prepared(config.data.cache, split=list(config.data.val_folds)) if config.data.val_folds else None
    if len(train_data.records) == 0:
        raise ValueError(f"{config.data.cache}: no records in training folds {config.data.train_folds}")
    encoder = ConditionEncoder.fit(train_data.records, config.conditions.mode, config.conditions.numeric_fields)
    x_train = _model_inputs(train_data.signals)
    scale = lead_scale(x_train, config.data.scaling, MODEL_LEADS)  # None: the network works in millivolts
    signal_scale = None if scale is None else torch.from_numpy(scale)[:, None]
    if signal_scale is not None:
        x_train = x_train / signal_scale
    cond_train = {k: torch.from_numpy(v) for k, v in encoder.encode(train_data.records).items()}
    x_val = _model_inputs(val_data.signals) if val_data is not None and len(val_data.records) else None
    if x_val is not None and signal_scale is not None:
        x_val = x_val / signal_scale
    cond_val = (
        {k: torch.from_numpy(v) for k, v in encoder.encode(val_data.records).items()} if x_val is not None else None
    )

    # Model, EMA, optimiser, schedule.
    length = int(train_data.manifest["length"])
    model_config = dataclasses.replace(
        config.model, length=length, condition_groups=encoder.groups, null_conditions=config.conditions.dropout > 0
    )
    model = SSSDECG(model_config).to(device)
    model.set_activation_checkpointing(
        activation_checkpointing(tc.checkpoint_activations, device, model_config, tc.batch_size)
    )
    ema = None
    if tc.ema_decay > 0:
        ema = SSSDECG(model_config).to(device)
        ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False).eval()
    param = Parameterization.from_config(config.diffusion)
    schedule = param.schedule
    # The mel filters must match the signals: a 500 Hz cache gets 500 Hz filters.
    objective = dataclasses.replace(config.objective, fs=float(train_data.manifest["rate"]))
    if param.is_flow and objective.kind == "midt" and objective.mel_target == "posterior_mean":
        raise ValueError(
            "objective.mel_target = 'posterior_mean' needs a DDPM process; use 'x0' with diffusion.prediction = 'flow'"
        )
    if tc.max_cpu_seconds > 0 and ddp.world > 1:
        raise ValueError("train.max_cpu_seconds is for single-process runs (a CPU budget per run)")
    optimizer = make_optimizer(model, tc.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, tc.warmup_steps, tc.lr_decay_start, tc.steps)
    )
    saved_config = generator_config(
        config, model_config, encoder, schedule, train_data.manifest, param, scale, objective
    )

    start_step, cpu_before = 0, 0.0
    if resume:
        resumed = resume_training_state(
            run_dir,
            model,
            ema,
            optimizer,
            scheduler,
            report=lambda line: ddp.is_main and print(line, file=sys.stderr),
            rename_broken=ddp.is_main,
        )
        if resumed is not None:
            checkpoint, meta = resumed
            start_step, cpu_before = meta["step"], float(meta.get("cpu_s", 0.0))
            if tc.max_cpu_seconds > 0 and cpu_before >= tc.max_cpu_seconds:
                if ddp.is_main:
                    print(f"{checkpoint}: the CPU budget of {tc.max_cpu_seconds:g} s is spent ({cpu_before:.0f} s)")
                return checkpoint
            if ddp.is_main:
                print(f"resuming from {checkpoint} at step {start_step}")
    elif has_checkpoints(run_dir):  # every rank stops, none waits for the others
        raise FileExistsError(
            f"{run_dir} already holds checkpoints: pass --resume to continue, or choose another out_dir"
        )

    step_model = model
    if ddp.world > 1:  # static graph: the same parameters every step, the last residual conv never used
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
        )
    use_bf16 = tc.bf16 and device.type == "cuda"
    trainer = TrainStep(
        model,
        optimizer,
        scheduler,
        param,
        objective,
        ema=ema,
        ema_decay=tc.ema_decay,
        steps=tc.steps,
        grad_clip=tc.grad_clip,
        step_model=step_model,
        bf16=use_bf16,
        log_capacity=max(tc.log_every, 1),
        compile=tc.compile,
        cuda_graph=tc.cuda_graph,
        signal_scale=signal_scale,
    )

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)

    log_file = writer = bar = None
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        log_file, log = _open_log(run_dir / "log.csv", start_step)
        writer = _tensorboard(run_dir)
        check = _checks(config, param, objective, x_train, cond_train, x_val, cond_val, signal_scale, device)
        bar = tqdm(total=tc.steps, initial=start_step, desc=config.name, disable=not progress, dynamic_ncols=True)

    n_train = len(x_train)
    started, window_start, window_steps = time.perf_counter(), time.perf_counter(), 0
    cpu_started = time.process_time()
    model.train()
    for step in range(start_step, tc.steps):
        idx = torch.from_numpy(batch_indices(step, n_train, tc.batch_size, tc.seed, ddp.rank, ddp.world))
        x0 = to_device(x_train[idx], device)
        conditions = {k: to_device(v[idx], device) for k, v in cond_train.items()}
        t, noise, drop = _draw(
            x0, param, config.conditions.dropout, encoder.groups, step_generator(tc.seed, step, ddp.rank, device)
        )
        trainer(step, x0, conditions, t, noise, drop)

        done = step + 1
        window_steps += 1
        cpu_used = cpu_before + time.process_time() - cpu_started
        out_of_budget = 0 < tc.max_cpu_seconds <= cpu_used
        last = done == tc.steps or out_of_budget
        if done % tc.log_every == 0 or last:
            means = trainer.read_log()  # every rank checks its losses; the first host read since the last log
        if ddp.is_main and (done % tc.log_every == 0 or last):
            now = time.perf_counter()
            rate = window_steps / max(now - window_start, 1e-9)
            val, reference, amplitude, warning = "", "", "", ""
            if done % tc.val_every == 0 or last:
                if x_val is not None:
                    val = validation_loss(
                        model,
                        x_val,
                        cond_val,
                        param,
                        objective,
                        tc.batch_size,
                        tc.val_batches,
                        tc.seed,
                        device,
                        autocast(),
                        signal_scale,
                    )
                    writer and writer.add_scalar("loss/val", val, done)
                reference, amplitude, warning = check(ema if ema is not None else model, done, val, last, autocast())
            log.writerow(
                [
                    done,
                    means["loss"],
                    means.get("mse", ""),
                    means.get("mel", ""),
                    scheduler.get_last_lr()[0],
                    val,
                    reference,
                    amplitude,
                    rate,
                    now - started,
                    cpu_used,
                    warning,
                ]
            )
            log_file.flush()
            if writer:
                for key, value in means.items():
                    writer.add_scalar(f"loss/{key}", value, done)
                writer.add_scalar("steps_per_s", rate, done)
            bar.set_postfix(
                loss=f"{means['loss']:.4f}", **({"val": f"{val:.4f}"} if val != "" else {}), it_s=f"{rate:.2f}"
            )
            window_start, window_steps = now, 0
        if bar is not None:
            bar.update(1)
        if done % tc.checkpoint_every == 0 or last:
            trainer.check_log()  # never save weights that a non-finite loss has touched
            if ddp.is_main:
                save_checkpoint(
                    run_dir,
                    done,
                    saved_config,
                    model,
                    ema,
                    optimizer,
                    scheduler,
                    extra={"elapsed_s": time.perf_counter() - started, "cpu_s": cpu_used},
                    keep=tc.keep_checkpoints,
                )
            if ddp.world > 1:
                check_in_sync(model)
                dist.barrier()
        if out_of_budget:
            if ddp.is_main:
                print(f"{config.name}: CPU budget of {tc.max_cpu_seconds:g} s spent at step {done}")
            break
    if bar is not None:
        bar.close()
    if log_file is not None:
        log_file.close()
    if writer is not None:
        writer.close()
    if owns_group:  # leave together: a rank that exits while another still talks to it can abort in teardown
        dist.barrier()
        dist.destroy_process_group()
    return latest_checkpoint(run_dir) or run_dir


def _open_log(path: Path, start_step: int):
    """log.csv for writing: a new file when the run starts at step 0, else the existing one to append to,
    without its rows past ``start_step`` (logged after the checkpoint the run resumes from, and logged again
    now); an older log with other columns is rewritten with the current ones (missing cells empty)."""
    new = start_step == 0 or not path.exists()
    if not new:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        kept = [row for row in rows if _log_step(row, path) <= start_step]
        if tuple(reader.fieldnames or ()) != LOG_COLUMNS or len(kept) < len(rows):
            with path.open("w", newline="") as handle:
                rewrite = csv.DictWriter(handle, LOG_COLUMNS, extrasaction="ignore")
                rewrite.writeheader()
                rewrite.writerows(kept)
    handle = path.open("w" if new else "a", newline="")
    log = csv.writer(handle)
    if new:
        log.writerow(LOG_COLUMNS)
    return handle, log


def _log_step(row: dict, path: Path) -> int:
    try:
        return int(row["step"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: a row without a valid step ({row.get('step')!r}); fix or remove the file") from None


def _checks(config, param, objective, x_train, cond_train, x_val, cond_val, signal_scale, device):
    """The monitor's checks as one function ``check(sampling_model, step, val_loss, last, autocast)`` ->
    (reference level, sample amplitude ratio, warning), each "" when it does not apply."""
    tc = config.train
    references = None
    if x_val is not None:
        mean, var = x_train.mean(dim=(0, 2))[:, None], x_train.var(dim=(0, 2))[:, None]
        references = monitor.reference_losses(
            monitor.validation_batches(x_val, cond_val, param, tc.batch_size, tc.val_batches, tc.seed, device),
            param,
            objective,
            mean,
            var,
            signal_scale,
        )
        print(
            f"{config.name}: validation reference levels: zero output {references['zero']:.4g}, Gaussian "
            f"baseline {references['gaussian']:.4g} (see midtecg.training.monitor)",
            file=sys.stderr,
        )
    x_ref, cond_ref = (x_val, cond_val) if x_val is not None else (x_train, cond_train)
    n = min(tc.check_samples, len(x_ref))
    amplitude_ref = monitor.amplitude_reference(x_ref if signal_scale is None else x_ref * signal_scale)
    check_conditions = {k: v[:n].to(device) for k, v in cond_ref.items()}

    def check(sampling_model, step: int, val_loss, last: bool, autocast):
        warnings = []
        if references is not None and val_loss != "":
            warnings.append(monitor.validation_warning(step, val_loss, references, tc.check_after_steps, last))
        amplitude = ""
        if n > 0:
            amplitude = monitor.sample_amplitude_ratio(
                sampling_model, check_conditions, param, x_ref.shape[-1], amplitude_ref, signal_scale, tc.seed, autocast
            )
            warnings.append(monitor.amplitude_warning(step, amplitude))
        warning = "; ".join(w for w in warnings if w)
        if warning:
            print(f"{config.name}: warning: {warning}", file=sys.stderr)
        return ("" if references is None else references["gaussian"]), amplitude, warning

    return check


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a broken install should not stop training
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
