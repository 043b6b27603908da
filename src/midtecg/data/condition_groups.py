"""What a conditioning input is: a named group of features (multi-hot labels, one-hot bins, z-scored
numbers with a mask) and the width the denoiser embeds it to. The condition encoder
(``midtecg.data.conditions``) makes the groups from the data; the model (``midtecg.models``) embeds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from midtecg.settings import checked

__all__ = ["ConditionGroup", "MODES", "NUMERIC_FIELDS", "MAX_GROUP_SIZE", "MAX_EMBED_DIM"]

#: What a generator can be conditioned on (``midtecg.data.conditions.ConditionEncoder``): the 71 labels
#: alone, or with age bins, sex, or the numeric demographics (z-scored, with a missing-value mask).
MODES: tuple[str, ...] = ("labels", "age", "sex", "numeric")
NUMERIC_FIELDS: tuple[str, ...] = ("age", "sex", "height", "weight", "bmi", "heart_rate")

MAX_GROUP_SIZE = 100_000  # features in one group, checked before a model is allocated
MAX_EMBED_DIM = 4096


@dataclass(frozen=True)
class ConditionGroup:
    """One conditioning input: ``size`` features embedded to ``embed_dim`` by a bias-free linear map."""

    name: str
    size: int = checked(1, min=1, max=MAX_GROUP_SIZE)
    embed_dim: int = checked(1, min=1, max=MAX_EMBED_DIM)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"condition group name must be a non-empty string, got {self.name!r}")
        for key in ("size", "embed_dim"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"condition group {self.name!r}: {key} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | ConditionGroup) -> ConditionGroup:
        if isinstance(data, ConditionGroup):
            return data
        if isinstance(data, (list, tuple)) and len(data) == 3:
            return cls(str(data[0]), int(data[1]), int(data[2]))
        if not isinstance(data, Mapping):
            raise ValueError(f"a condition group must be a dict with name, size, embed_dim; got {data!r}")
        unknown = set(data) - {"name", "size", "embed_dim"}
        if unknown:
            raise ValueError(f"condition group has unknown fields {sorted(unknown)}")
        try:
            return cls(data["name"], data["size"], data["embed_dim"])
        except KeyError as error:
            raise ValueError(f"condition group lacks field {error.args[0]!r}: {dict(data)!r}") from None
