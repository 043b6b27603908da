"""Experiment configuration: one TOML file with [data], [model], [conditions], [diffusion], [objective]
and [train] tables. Every key has a default, so a config file only states what differs."""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The largest dimensions a model may have (SSSDConfig fields), checked before anything is allocated: in
# an experiment config on load, and in a model's config.json before its weights are read.
MODEL_LIMITS = {"in_leads": 64, "length": 100_000, "channels": 4096, "blocks": 256, "state_size": 1024,
                "step_embed_dim": 4096, "step_hidden": 16_384}


FOLDS = (1, 10)  # the range of midtecg.data.ptbxl.FOLDS (not imported: reading a config needs no pandas)
MAX_DIFFUSION_STEPS = 100_000


def checked(default, **rules):
    """A field with its allowed range, checked on load: ``min`` / ``max`` (inclusive), ``above`` / ``below``
    (exclusive); for a tuple field the rules apply to each item and ``nonempty`` asks for at least one."""
    return field(default=default, metadata=rules)


@dataclass
class DataConfig:
    cache: str = ""  # a folder written by `midtecg prepare`
    train_folds: tuple[int, ...] = checked((1, 2, 3, 4, 5, 6, 7, 8), min=FOLDS[0], max=FOLDS[1], nonempty=True)
    val_folds: tuple[int, ...] = checked((9,), min=FOLDS[0], max=FOLDS[1])
    scaling: str = "none"  # none | std: divide each model lead by its training-split std (undone at sampling)

    def __post_init__(self):
        shared = sorted(set(self.train_folds) & set(self.val_folds))
        if shared:
            raise ValueError(f"train_folds and val_folds must be disjoint; both hold {shared}")


@dataclass
class ModelConfig:
    channels: int = checked(256, min=1, max=MODEL_LIMITS["channels"])
    blocks: int = checked(36, min=1, max=MODEL_LIMITS["blocks"])
    state_size: int = checked(64, min=2, max=MODEL_LIMITS["state_size"])
    s4_variant: str = "s4"
    cond_init: str = "normal"  # normal: N(0, 1) as the reference; linear: nn.Linear's default (before the fix)


@dataclass
class ConditionsConfig:
    mode: str = "labels"  # labels | age | sex | numeric
    numeric_fields: tuple[str, ...] = ("age", "sex", "height", "weight", "bmi", "heart_rate")
    # probability of dropping each condition group (classifier-free guidance)
    dropout: float = checked(0.0, min=0, below=1)


@dataclass
class DiffusionConfig:
    steps: int = checked(200, min=1, max=MAX_DIFFUSION_STEPS)
    kind: str = "linear"  # linear | cosine
    beta_start: float = checked(1e-4, above=0, below=1)
    beta_end: float = checked(0.02, above=0, below=1)
    zero_terminal_snr: bool = False  # rescale the betas so that alpha_bar_{T-1} = 0 (Lin et al. 2024)
    prediction: str = "eps"  # eps | v | flow (rectified flow: x_t = (1-t) x0 + t eps, target eps - x0)


@dataclass
class ObjectiveSection:
    kind: str = "eps"  # eps | midt
    mel_weight: float = checked(0.02, min=0)
    mel_target: str = "x0"  # x0 | posterior_mean
    mel_scales: str = "paper"  # paper | small
    mel_log_order: str = "clamp_first"  # clamp_first (method.md) | square_first (before the fix)


@dataclass
class TrainConfig:
    steps: int = checked(100_000, min=1)
    batch_size: int = checked(8, min=1)
    lr: float = checked(2e-4, above=0)
    warmup_steps: int = checked(0, min=0)
    grad_clip: float = checked(0.0, min=0)  # 0 disables clipping
    ema_decay: float = checked(0.999, min=0, below=1)  # 0 disables the EMA
    seed: int = checked(0, min=0)
    log_every: int = checked(50, min=1)
    val_every: int = checked(1000, min=1)
    val_batches: int = checked(8, min=1)
    checkpoint_every: int = checked(4000, min=1)
    keep_checkpoints: int = checked(2, min=1)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
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
        setting = str(self.checkpoint_activations).lower()  # TOML true/false arrive as "True"/"False"
        if setting not in ("auto", "true", "false"):
            raise ValueError(f"checkpoint_activations must be true, false or \"auto\", "
                             f"got {self.checkpoint_activations!r}")
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
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ExperimentConfig:
        """Build and validate a config: types strict (an integer is a TOML integer, a boolean a TOML
        boolean, folds a list), ranges checked, unknown keys refused; errors name ``source`` and the key."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a config must be a table, not {type(data).__name__}")
        return _build(cls, data, source, "")


def _type_problem(kind, value) -> str | None:
    """Why ``value`` is not of the annotated ``kind`` (None when it is)."""
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false (a TOML boolean)"
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if kind is str:
        return None if isinstance(value, str) else "must be a string"
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple:  # tuple[X, ...]: a TOML array of X
        if not isinstance(value, (list, tuple)):
            return f"must be a list of {args[0].__name__} values"
        problems = [_type_problem(args[0], item) for item in value]
        return next((f"item {item!r} {p}" for item, p in zip(value, problems) if p), None)
    if args:  # a union such as str | bool
        return None if any(_type_problem(a, value) is None for a in args) else \
            f"must be one of: {', '.join(a.__name__ for a in args)}"
    raise TypeError(f"internal: no check for the type {kind}")


def _range_problem(rules: dict, value) -> str | None:
    items = value if isinstance(value, (list, tuple)) else [value]
    if rules.get("nonempty") and not items:
        return "must hold at least one value"
    for item in items:
        what = "" if items is not value else f"item {item!r} "
        if "min" in rules and item < rules["min"]:
            return f"{what}must be at least {rules['min']}"
        if "max" in rules and item > rules["max"]:
            return f"{what}must be at most {rules['max']}"
        if "above" in rules and item <= rules["above"]:
            return f"{what}must be above {rules['above']}"
        if "below" in rules and item >= rules["below"]:
            return f"{what}must be below {rules['below']}"
    return None


def _build(cls, data: dict[str, Any], source: str, section: str):
    where = f"{source}: [{section}]" if section else f"{source}:"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where} unknown key(s) {unknown}; expected some of {sorted(fields)}")
    types = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kind = types[name]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ValueError(f"{source}: [{name}] must be a table, got {value!r}")
            kwargs[name] = _build(kind, value, source, name)
            continue
        problem = _type_problem(kind, value) or _range_problem(fields[name].metadata, value)
        if problem:
            raise ValueError(f"{where} {name} = {value!r}: {problem}")
        kwargs[name] = tuple(value) if isinstance(value, list) else float(value) if kind is float else value
    try:
        return cls(**kwargs)
    except ValueError as error:  # a rule between keys (__post_init__)
        raise ValueError(f"{where} {error}") from None


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
