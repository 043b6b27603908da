"""Models: S4 / S4D layers and the SSSD-ECG denoiser (the XResNet1d classifier is in ``xresnet1d``).

Imported lazily, so that ``midtecg.models.config`` (the denoiser's config, checked when a config file is
read) does not import torch."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "config": ("SSSDConfig", "S4_VARIANTS", "COND_INITS", "MODEL_LIMITS"),
    "s4": ("S4Layer",),
    "sssd": ("SSSDECG",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted([*_WHERE, "ConditionGroup"])


def __getattr__(name: str):
    if name == "ConditionGroup":  # it belongs to the data layer; here for the model's users
        from midtecg.data.condition_groups import ConditionGroup

        return ConditionGroup
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
