"""Noise schedules, parameterisations (eps, v, rectified flow), samplers (DDPM ancestral, DDIM,
DPM-Solver++ 2M; Euler and Heun for flow) and their noise sources, independent of any model.

Imported lazily, so that ``midtecg.diffusion.config`` (the ``[diffusion]`` section, checked when a config
file is read) does not import torch."""

from __future__ import annotations

from midtecg.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ("DiffusionConfig", "SCHEDULE_KINDS", "MAX_DIFFUSION_STEPS"),
        "flow": (
            "FLOW_SAMPLER_NAMES",
            "EulerSampler",
            "FlowSampler",
            "HeunSampler",
            "VelocityFn",
            "flow_interpolate",
            "flow_time",
            "flow_timesteps",
            "make_flow_sampler",
            "velocity_target",
            "velocity_to_eps_x0",
        ),
        "noise": ("IndexedNoise", "NoiseSource", "generator_noise"),
        "parameterization": (
            "PREDICTIONS",
            "Parameterization",
            "gaussian_optimal_output",
            "make_parameterized_sampler",
            "v_to_eps_x0",
        ),
        "samplers": (
            "SAMPLER_NAMES",
            "SAMPLER_PREDICTIONS",
            "DDIMSampler",
            "DDPMSampler",
            "DPMSolverPP2M",
            "EpsFn",
            "Sampler",
            "SPACINGS",
            "evenly_spaced_timesteps",
            "logsnr_spaced_timesteps",
            "make_sampler",
            "make_timesteps",
            "start_chain",
        ),
        "schedule": ("TABLE_NAMES", "NoiseSchedule"),
    },
)
