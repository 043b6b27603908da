"""The epsilon objective and the MIDT mel-spectrogram loss."""

from .mel import (
    LOG_ORDERS,
    PAPER_SCALES,
    SCALE_PRESETS,
    SMALL_SCALES,
    MelScale,
    MelSpectrogramLoss,
    hz_to_mel,
    mel_filterbank,
    mel_magnitude,
    mel_to_hz,
    multi_resolution_mel_loss,
    resolve_scales,
)
from .objective import MEL_TARGETS, OBJECTIVE_KINDS, ObjectiveConfig, training_loss

__all__ = [
    "LOG_ORDERS",
    "MelScale",
    "PAPER_SCALES",
    "SMALL_SCALES",
    "SCALE_PRESETS",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "mel_magnitude",
    "multi_resolution_mel_loss",
    "MelSpectrogramLoss",
    "resolve_scales",
    "ObjectiveConfig",
    "training_loss",
    "OBJECTIVE_KINDS",
    "MEL_TARGETS",
]
