"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder ``step-00001234/`` holding

- ``config.json``: the experiment config, the model config, the condition encoder and the noise schedule,
  everything needed to rebuild the generator;
- ``model.safetensors``: the weights used for sampling (the EMA weights when an EMA is kept);
- ``training.safetensors`` and ``training.json``: raw weights, optimiser tensors, RNG states, the step and
  the scheduler state, everything needed to resume exactly.

Folders are written under a temporary name and renamed when complete; ``latest.json`` in the run folder
names the newest complete checkpoint and is itself replaced atomically. A checkpoint folder, or just its
``config.json`` and ``model.safetensors``, is what ``midtecg generate --model`` loads.

``config.json`` carries the sha256 of ``model.safetensors`` (``weights_sha256``) and ``training.json`` that of
``training.safetensors`` (``training_sha256``); loading checks them, so tampered or damaged weights are
refused naming the file (configs without them, written before, still load). The dimensions in
``config.json`` are checked against ``MODEL_LIMITS`` before anything is allocated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import torch

from midtecg.io.arrays import atomic_write_text
from midtecg.models.files import (
    LATEST,
    WEIGHTS_SHA256,
    CheckpointError,
    latest_pointer,
    read_json,
    read_tensors,
    write_tensors,
)

FORMAT_VERSION = 1
TRAINING_SHA256 = "training_sha256"  # in training.json: the sha256 of training.safetensors


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_tensors() -> dict[str, torch.Tensor]:
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, rng in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{index}"] = rng
    return out


def _restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    config: dict,
    model: torch.nn.Module,
    ema: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    extra: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write a complete checkpoint atomically and keep the ``keep`` newest ones."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"step-{step:08d}"
    tmp = run_dir / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    sampling_model = ema if ema is not None else model
    weights_sha = write_tensors(tmp / "model.safetensors", sampling_model.state_dict())
    optim_tensors, optim_meta = optimizer_to_flat(optimizer)
    training = {f"model.{k}": v for k, v in model.state_dict().items()}
    training.update(optim_tensors)
    training.update(_rng_tensors())
    meta = {
        "format_version": FORMAT_VERSION,
        "step": step,
        TRAINING_SHA256: write_tensors(tmp / "training.safetensors", training),
        "optimizer": optim_meta,
        "scheduler": scheduler.state_dict(),
        "has_ema": ema is not None,
        **(extra or {}),
    }
    (tmp / "training.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    (tmp / "config.json").write_text(json.dumps({**config, WEIGHTS_SHA256: weights_sha}, indent=2, sort_keys=True))
    _fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(run_dir / LATEST, json.dumps({"step": step, "path": final.name}, indent=2))
    _prune(run_dir, keep)
    return final


def _fsync_dir(folder: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)  # safetensors writes 0600; checkpoints are meant to be shared
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _prune(run_dir: Path, keep: int) -> None:
    complete = sorted(run_dir.glob("step-*"))
    for old in complete[: max(0, len(complete) - max(keep, 1))]:
        shutil.rmtree(old, ignore_errors=True)


def checkpoint_folders(run_dir: str | Path) -> list[Path]:
    """The checkpoint folders (``step-*``) of a run folder, newest first (complete or not)."""
    return sorted((p for p in Path(run_dir).glob("step-*") if p.is_dir()), reverse=True)


def has_checkpoints(run_dir: str | Path) -> bool:
    """Whether a run folder holds checkpoints or a ``latest.json`` (a run that a new run would overwrite)."""
    return (Path(run_dir) / LATEST).exists() or bool(checkpoint_folders(run_dir))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``latest.json`` names when it holds its training state, else the newest folder that
    does, else None. Fast (no tensors read); ``resume_training_state`` checks the files themselves."""
    run_dir = Path(run_dir)
    with contextlib.suppress(CheckpointError):
        path = run_dir / latest_pointer(run_dir)
        if (path / "training.json").is_file():
            return path
    return next((p for p in checkpoint_folders(run_dir) if (p / "training.json").is_file()), None)


def _read_training_state(checkpoint: Path, with_ema: bool) -> tuple[dict, dict[str, torch.Tensor], dict | None]:
    meta = read_json(checkpoint / "training.json")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{checkpoint / 'training.json'}: unsupported checkpoint format {meta.get('format_version')}"
        )
    for key in ("step", "optimizer", "scheduler", "has_ema"):
        if key not in meta:
            raise CheckpointError(f'{checkpoint / "training.json"}: "{key}" is missing')
    tensors = read_tensors(checkpoint / "training.safetensors", meta.get(TRAINING_SHA256))
    ema_state = None
    if with_ema:
        if not meta["has_ema"]:
            raise ValueError(f"{checkpoint}: no EMA weights, but this run keeps an EMA")
        config = read_json(checkpoint / "config.json")
        ema_state = read_tensors(checkpoint / "model.safetensors", config.get(WEIGHTS_SHA256))
    return meta, tensors, ema_state


def load_training_state(
    checkpoint: str | Path,
    model: torch.nn.Module,
    ema: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict:
    """Restore everything ``save_checkpoint`` wrote; returns the training metadata (with ``step``). Every
    file is read and checked before anything is restored: a damaged checkpoint raises ``CheckpointError``
    naming the file and leaves the model, EMA, optimiser and scheduler as they were."""
    checkpoint = Path(checkpoint)
    meta, tensors, ema_state = _read_training_state(checkpoint, ema is not None)
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict(ema_state)
    optimizer.load_state_dict(optimizer_from_flat(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    _restore_rng(tensors)
    return meta


def resume_training_state(
    run_dir: str | Path,
    model: torch.nn.Module,
    ema: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    report=print,
    rename_broken: bool = True,
) -> tuple[Path, dict] | None:
    """Restore the newest complete checkpoint of ``run_dir`` (see ``load_training_state``); returns its
    folder and metadata, or None when the run folder holds no checkpoint at all (a fresh run). A newer
    checkpoint that is incomplete or damaged, or a ``latest.json`` that names a missing folder, is
    reported through ``report`` and skipped (with ``rename_broken``, the damaged folders are renamed
    ``broken-step-*``, kept for inspection and out of the run's rotation; only one process of a distributed
    run renames); when checkpoints exist but none is complete, ``CheckpointError`` names what is wrong."""
    run_dir = Path(run_dir)
    problems = []
    if (run_dir / LATEST).exists():
        try:
            named = run_dir / latest_pointer(run_dir)
            if not named.is_dir():
                problems.append(f"{run_dir / LATEST} names {named.name}, which does not exist")
        except CheckpointError as error:
            problems.append(str(error))
    folders = checkpoint_folders(run_dir)
    if not folders and not problems:
        return None
    broken = []
    for folder in folders:
        try:
            meta = load_training_state(folder, model, ema, optimizer, scheduler)
        except CheckpointError as error:
            problems.append(str(error))
            broken.append(folder)
            continue
        for problem in problems:
            report(f"warning: {problem}")
        for damaged in broken if rename_broken else ():
            target = damaged.with_name(f"broken-{damaged.name}")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(damaged, target)
        if problems:
            renamed = f" (renamed {', '.join('broken-' + b.name for b in broken)})" if broken and rename_broken else ""
            report(f"{folder} is the newest complete checkpoint: resuming from it{renamed}")
        return folder, meta
    raise CheckpointError(f"{run_dir}: no complete checkpoint to resume from: " + "; ".join(problems))
