"""Models: S4 / S4D layers and the SSSD-ECG denoiser (the XResNet1d classifier is in ``xresnet1d``).

Imported lazily, so that ``midtecg.models.config`` (the denoiser's config, checked when a config file is
read) does not import torch."""

from __future__ import annotations

from midtecg.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ("SSSDConfig", "S4_VARIANTS", "COND_INITS", "MODEL_LIMITS"),
        "s4": ("S4Layer",),
        "sssd": ("SSSDECG",),
        "midtecg.data.condition_groups": ("ConditionGroup",),  # the data layer's; here for the model's users
    },
)
