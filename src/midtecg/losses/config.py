"""The training objective, ``ObjectiveConfig`` (torch-free): the ``[objective]`` section of an experiment
config and the ``objective`` object of a generator's ``config.json``. See ``midtecg.losses.objective``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from midtecg.settings import build, checked, derived

__all__ = ["ObjectiveConfig", "OBJECTIVE_KINDS", "MEL_TARGETS", "MEL_SCALE_NAMES", "LOG_ORDERS"]

OBJECTIVE_KINDS: tuple[str, ...] = ("eps", "midt")
MEL_TARGETS: tuple[str, ...] = ("x0", "posterior_mean")
MEL_SCALE_NAMES: tuple[str, ...] = ("paper", "small", "rhythm")  # midtecg.losses.mel.SCALE_PRESETS
LOG_ORDERS: tuple[str, ...] = ("clamp_first", "square_first")  # square_first: before issue 12's fix


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective to train with. ``mel_*`` fields only matter for ``kind="midt"``; ``fs`` (the signals'
    sampling rate, which the mel filters must match) is set from the training cache."""

    kind: str = checked("eps", one_of=OBJECTIVE_KINDS)
    mel_weight: float = checked(0.02, min=0)
    mel_target: str = checked("x0", one_of=MEL_TARGETS)
    mel_scales: str = checked("paper", one_of=MEL_SCALE_NAMES)
    fs: float = derived(100.0, by="the training cache's sampling rate", above=0)
    mel_log_order: str = checked("clamp_first", one_of=LOG_ORDERS)

    def __post_init__(self) -> None:
        for key, choices in (
            ("kind", OBJECTIVE_KINDS),
            ("mel_target", MEL_TARGETS),
            ("mel_scales", MEL_SCALE_NAMES),
            ("mel_log_order", LOG_ORDERS),
        ):
            if getattr(self, key) not in choices:
                raise ValueError(f"unknown {key} {getattr(self, key)!r}; expected one of {', '.join(choices)}")
        if not float(self.mel_weight) >= 0.0:
            raise ValueError(f"mel_weight must be >= 0, got {self.mel_weight}")
        if not float(self.fs) > 0.0:
            raise ValueError(f"fs must be > 0, got {self.fs}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "ObjectiveConfig") -> ObjectiveConfig:
        """From ``to_dict``'s output, every key checked; ``sample_rate`` (model files before ``fs``) is ``fs``."""
        data = dict(data) if isinstance(data, dict) else data
        if isinstance(data, dict) and "sample_rate" in data and "fs" not in data:
            data["fs"] = data.pop("sample_rate")
        return build(cls, data, source, "objective", derived_ok=True)
