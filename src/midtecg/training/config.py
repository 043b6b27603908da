"""Experiment configuration: one TOML file with [data], [model], [conditions], [diffusion], [objective]
and [train] tables. Every key has a default, so a config file only states what differs.

The sections are the library's own dataclasses: ``[model]`` is ``midtecg.models.SSSDConfig``, ``[diffusion]``
``midtecg.diffusion.DiffusionConfig``, ``[objective]`` ``midtecg.losses.ObjectiveConfig``; ``[data]``,
``[conditions]`` and ``[train]`` are training's own (below). A file is checked once, on load, by
``midtecg.settings.build`` (types strict, ranges and choices checked, unknown keys and values that midtecg
sets from the data refused, every error naming the file and the key), before torch is imported.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from midtecg.data.condition_groups import MODES, NUMERIC_FIELDS
from midtecg.data.folds import FOLDS
from midtecg.data.scaling import SCALINGS
from midtecg.device import check_device_name
from midtecg.diffusion.config import DiffusionConfig
from midtecg.losses.config import ObjectiveConfig
from midtecg.models.config import SSSDConfig
from midtecg.settings import build, checked

__all__ = ["ExperimentConfig", "DataConfig", "ConditionsConfig", "TrainConfig", "load_config"]


@dataclass
class DataConfig:
    cache: str = ""  # a folder written by `midtecg prepare`
    train_folds: tuple[int, ...] = checked((1, 2, 3, 4, 5, 6, 7, 8), one_of=FOLDS, nonempty=True, unique=True)
    val_folds: tuple[int, ...] = checked((9,), one_of=FOLDS, unique=True)
    # none | std: divide each model lead by its training-split std (undone at sampling)
    scaling: str = checked("none", one_of=SCALINGS)

    def __post_init__(self):
        shared = sorted(set(self.train_folds) & set(self.val_folds))
        if shared:
            raise ValueError(f"train_folds and val_folds must be disjoint; both hold {shared}")


@dataclass
class ConditionsConfig:
    mode: str = checked("labels", one_of=MODES)
    numeric_fields: tuple[str, ...] = checked(NUMERIC_FIELDS, one_of=NUMERIC_FIELDS, unique=True)
    # probability of dropping each condition group (classifier-free guidance)
    dropout: float = checked(0.0, min=0, below=1)


@dataclass
class TrainConfig:
    steps: int = checked(100_000, min=1)
    batch_size: int = checked(8, min=1)
    lr: float = checked(2e-4, above=0)
    warmup_steps: int = checked(0, min=0)
    # from this step on the learning rate falls linearly to 0 at `steps`; 0: constant after the warm-up. For
    # a run stopped by max_cpu_seconds: resume it with --steps N --set train.lr_decay_start=<its last step>.
    lr_decay_start: int = checked(0, min=0)
    grad_clip: float = checked(0.0, min=0)  # 0 disables clipping
    ema_decay: float = checked(0.999, min=0, below=1)  # 0 disables the EMA
    seed: int = checked(0, min=0)
    log_every: int = checked(50, min=1)
    val_every: int = checked(1000, min=1)
    val_batches: int = checked(8, min=1)
    checkpoint_every: int = checked(4000, min=1)
    keep_checkpoints: int = checked(2, min=1)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    bf16: bool = True  # autocast on CUDA only
    compile: bool = False  # torch.compile the step's forward and loss (inductor; CPU or CUDA)
    cuda_graph: bool = False  # replay the step's forward and backward as a CUDA graph (CUDA, one process)
    # Recompute each residual block's activations in backward instead of keeping them (about a third more
    # compute). "auto": where they would take more than half the GPU's memory; never on the CPU.
    checkpoint_activations: str | bool = "auto"  # auto | true | false
    threads: int = checked(0, min=0)  # CPU threads for torch; 0 leaves torch's default
    # stop (checkpointed, resumable) after this much process CPU time; 0: off
    max_cpu_seconds: float = checked(0.0, min=0)
    # from here on, warn when the validation loss is not below the Gaussian baseline
    check_after_steps: int = checked(2000, min=0)
    check_samples: int = checked(4, min=0)  # ECGs sampled at each validation to check their amplitude; 0: off

    def __post_init__(self):
        self.device = check_device_name(self.device)
        if self.lr_decay_start >= self.steps:
            raise ValueError(f"lr_decay_start ({self.lr_decay_start}) must be below steps ({self.steps})")
        setting = str(self.checkpoint_activations).lower()  # TOML true/false arrive as "True"/"False"
        if setting not in ("auto", "true", "false"):
            raise ValueError(
                f'checkpoint_activations must be true, false or "auto", got {self.checkpoint_activations!r}'
            )
        self.checkpoint_activations = {"auto": "auto", "true": True, "false": False}[setting]


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    out_dir: str = "runs/experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: SSSDConfig = field(default_factory=SSSDConfig)
    conditions: ConditionsConfig = field(default_factory=ConditionsConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """The settable keys of every section (what a TOML file may hold): ``from_dict(to_dict())`` is equal."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = {
                    g.name: _plain(getattr(value, g.name))
                    for g in dataclasses.fields(value)
                    if g.init and "derived" not in g.metadata
                }
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ExperimentConfig:
        """Build and validate a config (``midtecg.settings.build``); errors name ``source`` and the key."""
        return build(cls, data, source)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a TOML experiment config and apply ``section.key=value`` overrides (values parsed as TOML)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with path.open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: TOML syntax error: {error}") from None
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise ValueError(f"override {override!r} must look like section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string such as a path
        *sections, leaf = key.strip().split(".")
        table = data
        for section in sections:
            table = table.setdefault(section, {})
        table[leaf] = value
    return ExperimentConfig.from_dict(data, source=str(path))
