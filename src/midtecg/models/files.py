"""A generator's model files: ``config.json`` (the model, condition encoder, schedule and signal settings) and
``model.safetensors`` (the sampling weights), read and written without pickle.

``config.json`` carries the sha256 of ``model.safetensors`` (``weights_sha256``); loading checks it, so
tampered or damaged weights are refused naming the file (configs without it, written before, still load).
The dimensions in ``config.json`` are checked against their limits (``midtecg.models.config``) before
anything is allocated. A training run folder (``midtecg.training.checkpoint``) names its newest checkpoint
in ``latest.json``; ``read_model_files`` follows it, so a run folder loads like a model folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from midtecg.data.condition_groups import MAX_EMBED_DIM, MAX_GROUP_SIZE
from midtecg.diffusion.config import MAX_DIFFUSION_STEPS
from midtecg.models.config import MODEL_LIMITS

__all__ = [
    "CheckpointError",
    "LATEST",
    "WEIGHTS_SHA256",
    "write_tensors",
    "read_tensors",
    "read_json",
    "check_model_config",
    "latest_pointer",
    "read_model_files",
]

LATEST = "latest.json"
WEIGHTS_SHA256 = "weights_sha256"  # in config.json: the sha256 of model.safetensors
SIGNAL_LIMITS = {"length": MODEL_LIMITS["length"]}
SCHEDULE_LIMITS = {"num_steps": MAX_DIFFUSION_STEPS}
CONDITION_GROUP_LIMITS = {"size": MAX_GROUP_SIZE, "embed_dim": MAX_EMBED_DIM}
MAX_FS = 10_000.0


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, corrupt or tampered with; the message names the file."""


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().contiguous().cpu() for key, value in state.items()}


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write ``tensors`` as safetensors; returns the file's sha256."""
    data = save(_contiguous(tensors))
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_tensors(path: Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked against ``sha256`` when given; a missing, truncated,
    corrupt or altered file raises ``CheckpointError`` naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as error:  # what safetensors raises for damaged files
        raise CheckpointError(f"{path} could not be read as safetensors (truncated or corrupt): {error}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(f"{path} does not match the sha256 recorded for it: the file was altered or damaged")
    return tensors


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; a missing or invalid file raises ``CheckpointError`` naming it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _check_sizes(section, limits: dict[str, int], where: str) -> None:
    if not isinstance(section, dict):
        raise ValueError(f"{where} must be a JSON object")
    for key, limit in limits.items():
        if key in section:
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                raise ValueError(f"{where}.{key} = {value!r}: must be an integer from 1 to {limit}")


def check_model_config(config: dict, path: str | Path) -> None:
    """Refuse dimensions in a model's ``config.json`` (model, condition groups, signal, schedule) beyond
    the limits above, before anything is allocated; the error names the file and the key."""
    _check_sizes(config.get("model", {}), MODEL_LIMITS, f"{path}: model")
    groups = config.get("model", {}).get("condition_groups", [])
    for index, group in enumerate(groups if isinstance(groups, list) else [groups]):
        if isinstance(group, dict):
            _check_sizes(group, CONDITION_GROUP_LIMITS, f"{path}: model.condition_groups[{index}]")
    signal = config.get("signal", {})
    _check_sizes(signal, SIGNAL_LIMITS, f"{path}: signal")
    fs = signal.get("fs", 1)
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not (0 < fs <= MAX_FS and math.isfinite(fs)):
        raise ValueError(f"{path}: signal.fs = {fs!r}: must be a number above 0 and at most {MAX_FS:g}")
    _check_sizes(config.get("schedule", {}), SCHEDULE_LIMITS, f"{path}: schedule")


def latest_pointer(run_dir: Path) -> str:
    """The checkpoint folder name that ``latest.json`` holds (a plain name inside the run folder)."""
    pointer = run_dir / LATEST
    name = read_json(pointer).get("path")
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(f'{pointer}: "path" must name a checkpoint folder in {run_dir}, got {name!r}')
    return name


def read_model_files(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The config and sampling weights of a checkpoint folder or exported model folder. The config's
    dimensions are checked before the weights are read, and the weights against the config's sha256."""
    path = Path(path)
    if path.is_dir() and (path / LATEST).is_file():  # a run folder: its newest checkpoint (only the model files
        path = path / latest_pointer(path)  # are needed, not the training state)
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    for required in (config_path, weights_path):
        if not required.is_file():
            raise FileNotFoundError(f"{path} is not a midtecg model: {required.name} is missing")
    config = read_json(config_path)
    check_model_config(config, config_path)
    sha256 = config.get(WEIGHTS_SHA256)
    if sha256 is not None and not isinstance(sha256, str):
        raise CheckpointError(f"{config_path}: {WEIGHTS_SHA256} must be a hex string, got {sha256!r}")
    return config, read_tensors(weights_path, sha256)
