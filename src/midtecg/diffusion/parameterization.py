"""What the network predicts, and everything training needs to know about it, for the three choices:

========  =================================  =====================================  ==========================
name      x_t                                network target                          time the network sees
========  =================================  =====================================  ==========================
``eps``   sqrt(ab_t) x0 + sqrt(1 - ab_t) eps  eps (DDPM, SSSD-ECG, the default)      integer step t in 0..T-1
``v``     the same                           v = sqrt(ab_t) eps - sqrt(1 - ab_t) x0  integer step t
``flow``  (1 - t) x0 + t eps, t in [0, 1]     u = eps - x0 (rectified flow)           t * time_scale (float)
========  =================================  =====================================  ==========================

Every path is x_t = a x0 + b eps, and ``split`` turns a network output back into (eps_hat, x0_hat):
``v``: eps = b x_t + a v, x0 = a x_t - b v; ``flow``: eps = x_t + (1 - t) u, x0 = x_t - t u; ``eps``:
x0 = (x_t - b eps) / a, undefined where a = 0 (the last step of a zero terminal SNR schedule): x0_hat is
set to 0 there (nothing of x0 is left in x_t; 0 is the MMSE estimate for centred data) and ``x0_known``
says which samples that concerns.

v-prediction (Salimans & Ho 2022) keeps the target's scale fixed over t and stays well defined at zero SNR,
which is why Lin et al. (2024) pair it with the rescaled schedule. The flow time is mapped to the step
embedding as ``t * time_scale`` (default T - 1 = 199), so the flow network's embedding spans the same range
as the DDPM network's integer steps, the range the SSSD-ECG embedding was designed for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from .config import PREDICTIONS, DiffusionConfig
from .flow import (
    FLOW_SAMPLER_NAMES,
    flow_interpolate,
    flow_time,
    make_flow_sampler,
    velocity_target,
    velocity_to_eps_x0,
)
from .samplers import SAMPLER_NAMES, make_sampler
from .schedule import NoiseSchedule

__all__ = ["PREDICTIONS", "Parameterization", "v_to_eps_x0", "gaussian_optimal_output", "make_parameterized_sampler"]


def v_to_eps_x0(v, x_t, a, b):
    """(eps, x0) from a v estimate, with a = sqrt(ab_t), b = sqrt(1 - ab_t) (floats or broadcastable tensors)."""
    return b * x_t + a * v, a * x_t - b * v


@dataclass(frozen=True)
class Parameterization:
    """The network's target and time input. ``schedule`` is the DDPM schedule (unused by ``flow``);
    ``time_scale`` (``flow`` only) maps t in [0, 1] to the step embedding, 0 meaning ``schedule.num_steps - 1``."""

    prediction: str = "eps"
    schedule: NoiseSchedule = field(default_factory=NoiseSchedule)
    time_scale: float = 0.0

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}; expected one of {', '.join(PREDICTIONS)}")
        if not isinstance(self.schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(self.schedule).__name__}")
        if not float(self.time_scale) >= 0.0:
            raise ValueError(f"time_scale must be >= 0, got {self.time_scale}")
        if self.prediction == "flow" and float(self.time_scale) == 0.0:
            object.__setattr__(self, "time_scale", float(max(self.schedule.num_steps - 1, 1)))

    @property
    def is_flow(self) -> bool:
        return self.prediction == "flow"

    # ------------------------------------------------------------------ training
    def draw_times(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        """Diffusion times of a batch: integer steps uniform on 0..T-1, or flow times uniform on [0, 1)."""
        if self.is_flow:
            return torch.rand(batch, generator=generator, device=device)
        return torch.randint(0, self.schedule.num_steps, (batch,), generator=generator, device=device)

    def coefficients(self, t, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) of x_t = a x0 + b eps, shaped to broadcast against ``like``."""
        if self.is_flow:
            t = flow_time(t, like)
            return 1.0 - t, t
        return self.schedule.coefficients(t, like)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """x_t for clean signals ``x0``, noise and times ``t``."""
        if self.is_flow:
            return flow_interpolate(x0, noise, t)
        return self.schedule.add_noise(x0, noise, t)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """What the network is trained to output."""
        if self.prediction == "eps":
            return noise
        if self.is_flow:
            return velocity_target(x0, noise)
        a, b = self.coefficients(t, x0)
        return a * noise - b * x0

    def split(self, output: torch.Tensor, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps_hat, x0_hat) from a network output; differentiable, finite everywhere (x0_hat = 0 where
        ``x0_known`` is False)."""
        if self.is_flow:
            return velocity_to_eps_x0(output, x_t, t)
        if self.prediction == "v":
            a, b = self.coefficients(t, x_t)
            return v_to_eps_x0(output, x_t, a, b)
        if not self.schedule.terminal_snr_is_zero:
            return output, self.schedule.predict_x0(x_t, output, t)
        a, b = self.coefficients(t, x_t)
        known = a > 0
        x0 = (x_t - b * output) / torch.where(known, a, torch.ones_like(a))
        return output, torch.where(known, x0, torch.zeros_like(x0))

    def x0_known(self, t, like: torch.Tensor) -> torch.Tensor | None:
        """Where x0_hat carries information: None when everywhere, else a 0/1 float mask broadcasting
        against ``like`` (only epsilon prediction on a zero terminal SNR schedule has such steps)."""
        if self.prediction != "eps" or not self.schedule.terminal_snr_is_zero:
            return None
        a, _ = self.coefficients(t, like)
        return (a > 0).to(a.dtype)

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        """The network's step input for times ``t`` (integer steps pass through; flow times are scaled)."""
        if self.is_flow:
            return t.to(torch.float32) * float(self.time_scale)
        return t

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """What a checkpoint stores (the schedule is stored on its own)."""
        out = {"prediction": self.prediction}
        if self.is_flow:
            out["time_scale"] = float(self.time_scale)
        return out

    @classmethod
    def from_config(cls, config: DiffusionConfig) -> Parameterization:
        """The process a ``[diffusion]`` section describes: the schedule from its fields of the same names."""
        schedule = NoiseSchedule(**{f.name: getattr(config, f.name) for f in fields(NoiseSchedule) if f.init})
        return cls(config.prediction, schedule)

    @classmethod
    def from_dict(cls, data: dict | None, schedule: NoiseSchedule) -> Parameterization:
        """From ``to_dict``'s output; None or {} (checkpoints older than this option) is epsilon prediction."""
        data = dict(data or {})
        unknown = set(data) - {"prediction", "time_scale"}
        if unknown:
            raise ValueError(f"unknown parameterization fields: {', '.join(sorted(unknown))}")
        return cls(str(data.get("prediction", "eps")), schedule, float(data.get("time_scale", 0.0)))


def gaussian_optimal_output(
    param: Parameterization, x_t: torch.Tensor, t, mean: torch.Tensor, var: torch.Tensor
) -> torch.Tensor:
    """The best (MMSE) network output if the data were Gaussian, independent per element, with ``mean`` and
    ``var`` (broadcasting against ``x_t``, e.g. per lead (C, 1)): with x_t = a x0 + b eps,
    E[x0 | x_t] = mean + a var (x_t - a mean) / (a^2 var + b^2) and E[eps | x_t] = b (x_t - a mean) / (a^2 var + b^2).
    A network that does no better than this has learnt nothing of the ECG's shape over time."""
    a, b = param.coefficients(t, x_t)
    resid = (x_t - a * mean) / (a * a * var + b * b)
    x0, eps = mean + a * var * resid, b * resid
    return param.target(x0, eps, t)


def make_parameterized_sampler(
    param: Parameterization, name: str | None = None, steps: int | None = None, eta: float = 0.0
):
    """The sampler ``name`` for a network with this parameterisation: ddpm / ddim / dpm++2m for ``eps`` and
    ``v`` (default ddpm), euler / heun for ``flow`` (default heun, 20 steps). Its ``sample(fn, shape, ...)``
    takes the network's raw output as ``fn(x_t, t)``, with ``t`` the sampler's time (map it with
    ``model_time`` before it reaches the network)."""
    if param.is_flow:
        if name is not None and str(name).lower().strip() in SAMPLER_NAMES:
            raise ValueError(
                f"sampler {name!r} is for diffusion models; this is a rectified-flow model: use one "
                f"of {', '.join(FLOW_SAMPLER_NAMES)}"
            )
        if eta != 0.0:
            raise ValueError("eta is not used by the flow samplers")
        return make_flow_sampler(name or "heun", steps)
    if name is not None and str(name).lower().strip() in FLOW_SAMPLER_NAMES:
        raise ValueError(
            f"sampler {name!r} is for rectified-flow models; this is a diffusion model: use one of "
            f"{', '.join(SAMPLER_NAMES)}"
        )
    return make_sampler(name or "ddpm", param.schedule, steps=steps, eta=eta, prediction=param.prediction)
