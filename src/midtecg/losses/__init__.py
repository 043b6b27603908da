"""The epsilon objective and the MIDT mel-spectrogram loss.

Imported lazily, so that ``midtecg.losses.config`` (the ``[objective]`` section, checked when a config file
is read) does not import torch."""

from __future__ import annotations

from midtecg.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ("ObjectiveConfig", "OBJECTIVE_KINDS", "MEL_TARGETS", "MEL_SCALE_NAMES", "LOG_ORDERS"),
        "mel": (
            "PAPER_SCALES",
            "RHYTHM_SCALES",
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
    },
)
