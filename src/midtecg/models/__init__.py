"""Models: S4 / S4D layers and the SSSD-ECG denoiser (the XResNet1d classifier is in ``xresnet1d``)."""

from midtecg.models.s4 import S4_VARIANTS, S4Layer
from midtecg.models.sssd import SSSDECG, ConditionGroup, SSSDConfig

__all__ = ["S4Layer", "S4_VARIANTS", "SSSDECG", "SSSDConfig", "ConditionGroup"]
