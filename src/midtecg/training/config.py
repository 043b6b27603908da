"""Experiment configuration: one TOML file with [data], [model], [conditions], [diffusion], [objective]
and [train] tables. Every key has a default, so a config file only states what differs."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The largest dimensions a model may have (SSSDConfig fields), checked before anything is allocated: in
# an experiment config on load, and in a model's config.json before its weights are read.
MODEL_LIMITS = {"in_leads": 64, "length": 100_000, "channels": 4096, "blocks": 256, "state_size": 1024,
                "step_embed_dim": 4096, "step_hidden": 16_384}


@dataclass
class DataConfig:
    cache: str = ""  # a folder written by `midtecg prepare`
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    val_folds: tuple[int, ...] = (9,)
    scaling: str = "none"  # none | std: divide each model lead by its training-split std (undone at sampling)


@dataclass
class ModelConfig:
    channels: int = 256
    blocks: int = 36
    state_size: int = 64
    s4_variant: str = "s4"
    cond_init: str = "normal"  # normal: N(0, 1) as the reference; linear: nn.Linear's default (before the fix)


@dataclass
class ConditionsConfig:
    mode: str = "labels"  # labels | age | sex | numeric
    numeric_fields: tuple[str, ...] = ("age", "sex", "height", "weight", "bmi", "heart_rate")
    dropout: float = 0.0  # probability of dropping each condition group (classifier-free guidance)


@dataclass
class DiffusionConfig:
    steps: int = 200
    kind: str = "linear"  # linear | cosine
    beta_start: float = 1e-4
    beta_end: float = 0.02
    zero_terminal_snr: bool = False  # rescale the betas so that alpha_bar_{T-1} = 0 (Lin et al. 2024)
    prediction: str = "eps"  # eps | v | flow (rectified flow: x_t = (1-t) x0 + t eps, target eps - x0)


@dataclass
class ObjectiveSection:
    kind: str = "eps"  # eps | midt
    mel_weight: float = 0.02
    mel_target: str = "x0"  # x0 | posterior_mean
    mel_scales: str = "paper"  # paper | small
    mel_log_order: str = "clamp_first"  # clamp_first (method.md) | square_first (before the fix)


@dataclass
class TrainConfig:
    steps: int = 100_000
    batch_size: int = 8
    lr: float = 2e-4
    warmup_steps: int = 0
    grad_clip: float = 0.0  # 0 disables clipping
    ema_decay: float = 0.999  # 0 disables the EMA
    seed: int = 0
    log_every: int = 50
    val_every: int = 1000
    val_batches: int = 8
    checkpoint_every: int = 4000
    keep_checkpoints: int = 2
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = True  # autocast on CUDA only
    compile: bool = False  # torch.compile the step's forward and loss (inductor; CPU or CUDA)
    cuda_graph: bool = False  # replay the step's forward and backward as a CUDA graph (CUDA, one process)
    # Recompute each residual block's activations in backward instead of keeping them (about a third more
    # compute). "auto": where they would take more than half the GPU's memory; never on the CPU.
    checkpoint_activations: str | bool = "auto"  # auto | true | false
    threads: int = 0  # CPU threads for torch; 0 leaves torch's default
    max_cpu_seconds: float = 0.0  # stop (checkpointed, resumable) after this much process CPU time; 0: off
    check_after_steps: int = 2000  # from here on, warn when the validation loss is not below the Gaussian baseline
    check_samples: int = 4  # ECGs sampled at each validation to check their amplitude; 0: off

    def __post_init__(self):
        setting = str(self.checkpoint_activations).lower()  # TOML true/false arrive as "True"/"False"
        if setting not in ("auto", "true", "false"):
            raise ValueError(f"train.checkpoint_activations must be true, false or \"auto\", got {self.checkpoint_activations!r}")
        self.checkpoint_activations = {"auto": "auto", "true": True, "false": False}[setting]


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    out_dir: str = "runs/experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    conditions: ConditionsConfig = field(default_factory=ConditionsConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "ExperimentConfig":
        return _build(cls, data, source)


def _build(cls, data: dict[str, Any], where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name) if name in fields else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: [{name}] must be a table")
            kwargs[name] = _build(type(default), value, f"{where} [{name}]")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        elif isinstance(default, bool) or default is None:
            kwargs[name] = value
        else:
            try:
                kwargs[name] = type(default)(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {name} = {value!r} is not a {type(default).__name__}") from None
    return cls(**kwargs)


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
