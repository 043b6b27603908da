"""The denoiser's shape, ``SSSDConfig`` (torch-free: a config file is checked before torch is imported).

It is the ``[model]`` section of an experiment config (``midtecg.training.config``) and the ``model``
object of a generator's ``config.json``. The signal's shape and the condition groups are set from the
data (``derived`` fields: a config file may not state them); every size has an upper limit
(``MODEL_LIMITS``), checked before anything is allocated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from midtecg.data.condition_groups import ConditionGroup
from midtecg.settings import build, checked, derived

__all__ = ["SSSDConfig", "S4_VARIANTS", "COND_INITS", "MODEL_LIMITS"]

S4_VARIANTS: tuple[str, ...] = ("s4", "s4d", "s4d-lin")

#: Initialisation of the condition embeddings: "normal" draws N(0, 1) like ``nn.Embedding`` (the reference
#: SSSD-ECG's label table); "linear" keeps ``nn.Linear``'s default (uniform, std 1 / sqrt(3 * size), 0.068 for
#: the 71 labels: midtecg before it matched the reference, conditioning 14.6x weaker at the start).
COND_INITS: tuple[str, ...] = ("normal", "linear")

#: The largest dimensions a model may have, checked before anything is allocated.
MODEL_LIMITS = {
    "in_leads": 64,
    "length": 100_000,
    "channels": 4096,
    "blocks": 256,
    "state_size": 1024,
    "step_embed_dim": 4096,
    "step_hidden": 16_384,
}


def _default_groups() -> tuple[ConditionGroup, ...]:
    return (ConditionGroup("labels", 71, 128),)


def _size(default: int, key: str, **more):
    return checked(default, min=1, max=MODEL_LIMITS[key], **more)


@dataclass
class SSSDConfig:
    """Shape of the SSSD-ECG denoiser. Defaults are the published configuration (50,202,504 parameters)."""

    in_leads: int = derived(8, by="the 8 model leads (I, V1-V6, aVF)", min=1, max=MODEL_LIMITS["in_leads"])
    length: int = derived(1000, by="the training cache's signal length", min=1, max=MODEL_LIMITS["length"])
    channels: int = _size(256, "channels")
    blocks: int = _size(36, "blocks")
    state_size: int = _size(64, "state_size")
    s4_variant: str = checked("s4", one_of=S4_VARIANTS)
    step_embed_dim: int = _size(128, "step_embed_dim")
    step_hidden: int = _size(512, "step_hidden")
    condition_groups: tuple[ConditionGroup, ...] = derived(
        by="[conditions] (the condition encoder)", default_factory=_default_groups
    )
    null_conditions: bool = derived(False, by="[conditions] dropout (learned null embeddings when above 0)")
    cond_init: str = checked("normal", one_of=COND_INITS)  # normal: as the reference's nn.Embedding

    def __post_init__(self):
        self.condition_groups = tuple(ConditionGroup.from_dict(g) for g in self.condition_groups)
        for key in ("in_leads", "length", "channels", "blocks", "state_size", "step_embed_dim", "step_hidden"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SSSDConfig.{key} must be a positive integer, got {value!r}")
        if self.state_size % 2:
            raise ValueError(f"SSSDConfig.state_size must be even (conjugate pairs), got {self.state_size}")
        if self.step_embed_dim % 2 or self.step_embed_dim < 4:
            raise ValueError(f"SSSDConfig.step_embed_dim must be even and >= 4, got {self.step_embed_dim}")
        if self.s4_variant not in S4_VARIANTS:
            raise ValueError(f"SSSDConfig.s4_variant must be one of {S4_VARIANTS}, got {self.s4_variant!r}")
        if not self.condition_groups:
            raise ValueError("SSSDConfig.condition_groups must hold at least one group")
        names = [g.name for g in self.condition_groups]
        if len(set(names)) != len(names):
            raise ValueError(f"SSSDConfig.condition_groups has repeated names: {names}")
        if not isinstance(self.null_conditions, bool):
            raise ValueError(f"SSSDConfig.null_conditions must be a bool, got {self.null_conditions!r}")
        if self.cond_init not in COND_INITS:
            raise ValueError(f"SSSDConfig.cond_init must be one of {COND_INITS}, got {self.cond_init!r}")

    @property
    def cond_dim(self) -> int:
        """Width of the concatenated condition embedding that enters every block."""
        return sum(g.embed_dim for g in self.condition_groups)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; ``SSSDConfig.from_dict(c.to_dict()) == c``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["condition_groups"] = [g.to_dict() for g in self.condition_groups]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "SSSDConfig") -> SSSDConfig:
        """From ``to_dict``'s output (a model file's ``model`` object), every key checked (``settings.build``)."""
        return build(cls, dict(data) if isinstance(data, Mapping) else data, source, "model", derived_ok=True)
