"""Noise schedules and samplers (DDPM ancestral, DDIM, DPM-Solver++ 2M), independent of any model."""

from .samplers import (
    SAMPLER_NAMES,
    DDIMSampler,
    DDPMSampler,
    DPMSolverPP2M,
    EpsFn,
    Sampler,
    SPACINGS,
    evenly_spaced_timesteps,
    logsnr_spaced_timesteps,
    make_sampler,
    make_timesteps,
)
from .schedule import TABLE_NAMES, NoiseSchedule

__all__ = [
    "NoiseSchedule",
    "TABLE_NAMES",
    "EpsFn",
    "Sampler",
    "DDPMSampler",
    "DDIMSampler",
    "DPMSolverPP2M",
    "SAMPLER_NAMES",
    "make_sampler",
    "evenly_spaced_timesteps",
    "logsnr_spaced_timesteps",
    "make_timesteps",
    "SPACINGS",
]
