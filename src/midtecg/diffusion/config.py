"""The diffusion process of a training run, ``DiffusionConfig`` (torch-free): the ``[diffusion]`` section of
an experiment config. ``Parameterization.from_config`` builds the process from it: the noise schedule
(``NoiseSchedule``, whose fields are the ones named the same here) and what the network predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

from midtecg.settings import checked

__all__ = ["DiffusionConfig", "PREDICTIONS", "SCHEDULE_KINDS", "MAX_DIFFUSION_STEPS"]

PREDICTIONS: tuple[str, ...] = ("eps", "v", "flow")
SCHEDULE_KINDS: tuple[str, ...] = ("linear", "cosine")
MAX_DIFFUSION_STEPS = 100_000


@dataclass(frozen=True)
class DiffusionConfig:
    """``prediction``: eps (DDPM, SSSD-ECG), v, or flow (rectified flow: x_t = (1-t) x0 + t eps, target
    eps - x0; the schedule then only sets the step embedding's range). The rest is the DDPM schedule:
    ``num_steps`` T, ``kind`` linear (betas ``beta_start`` -> ``beta_end``, method.md section 3) or cosine
    (offset ``cosine_s``), and ``zero_terminal_snr`` (betas rescaled so that alpha_bar_{T-1} = 0)."""

    prediction: str = checked("eps", one_of=PREDICTIONS)
    num_steps: int = checked(200, min=1, max=MAX_DIFFUSION_STEPS)
    kind: str = checked("linear", one_of=SCHEDULE_KINDS)
    beta_start: float = checked(1e-4, above=0, below=1)
    beta_end: float = checked(0.02, above=0, below=1)
    cosine_s: float = checked(0.008, min=0)
    zero_terminal_snr: bool = False

    def __post_init__(self) -> None:
        if self.kind == "linear" and not self.beta_start <= self.beta_end:
            raise ValueError(f"beta_start ({self.beta_start}) must not exceed beta_end ({self.beta_end})")
