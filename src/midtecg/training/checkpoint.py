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
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from midtecg.io.arrays import atomic_write_text

FORMAT_VERSION = 1
LATEST = "latest.json"


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().contiguous().cpu() for key, value in state.items()}


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
    save_file(_contiguous(sampling_model.state_dict()), tmp / "model.safetensors")
    optim_tensors, optim_meta = optimizer_to_flat(optimizer)
    training = {f"model.{k}": v for k, v in model.state_dict().items()}
    training.update(optim_tensors)
    training.update(_rng_tensors())
    save_file(_contiguous(training), tmp / "training.safetensors")
    meta = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "optimizer": optim_meta,
        "scheduler": scheduler.state_dict(),
        "has_ema": ema is not None,
        **(extra or {}),
    }
    (tmp / "training.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
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


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None when there is none."""
    pointer = Path(run_dir) / LATEST
    if not pointer.is_file():
        return None
    path = Path(run_dir) / json.loads(pointer.read_text())["path"]
    return path if (path / "training.json").is_file() else None


def load_training_state(
    checkpoint: str | Path,
    model: torch.nn.Module,
    ema: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict:
    """Restore everything ``save_checkpoint`` wrote; returns the training metadata (with ``step``)."""
    checkpoint = Path(checkpoint)
    meta = json.loads((checkpoint / "training.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{checkpoint}: unsupported checkpoint format {meta.get('format_version')}")
    tensors = load_file(checkpoint / "training.safetensors")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        if not meta["has_ema"]:
            raise ValueError(f"{checkpoint}: no EMA weights, but this run keeps an EMA")
        ema.load_state_dict(load_file(checkpoint / "model.safetensors"))
    optimizer.load_state_dict(optimizer_from_flat(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    _restore_rng(tensors)
    return meta


def read_model_files(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The config and sampling weights of a checkpoint folder or exported model folder."""
    path = Path(path)
    if path.is_dir() and (path / LATEST).is_file():  # a run folder: its newest checkpoint (only the model files
        path = path / json.loads((path / LATEST).read_text())["path"]  # are needed, not the training state)
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    for required in (config_path, weights_path):
        if not required.is_file():
            raise FileNotFoundError(f"{path} is not a midtecg model: {required.name} is missing")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    try:
        weights = load_file(weights_path)
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{weights_path} could not be read as safetensors: {error}") from None
    return config, weights
