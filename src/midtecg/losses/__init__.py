"""The epsilon objective and the MIDT mel-spectrogram loss.

Imported lazily, so that ``midtecg.losses.config`` (the ``[objective]`` section, checked when a config file
is read) does not import torch."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "config": ("ObjectiveConfig", "OBJECTIVE_KINDS", "MEL_TARGETS", "MEL_SCALE_NAMES", "LOG_ORDERS"),
    "mel": (
        "PAPER_SCALES",
        "SCALE_PRESETS",
        "SMALL_SCALES",
        "MelScale",
        "MelSpectrogramLoss",
        "hz_to_mel",
        "mel_filterbank",
        "mel_magnitude",
        "mel_to_hz",
        "multi_resolution_mel_loss",
        "resolve_scales",
    ),
    "objective": ("training_loss",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
