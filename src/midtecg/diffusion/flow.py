"""Rectified flow (Liu et al. 2023; "flow matching" with a straight path), independent of any model.

Path and target, with continuous time ``t`` in [0, 1] (0: data, 1: noise)::

    x_t = (1 - t) x0 + t eps,        u = dx_t / dt = eps - x0 (the velocity the network predicts)

so from a velocity estimate ``u`` at ``(x_t, t)``: ``x0 = x_t - t u`` and ``eps = x_t + (1 - t) u``. The
loss is MSE(u_hat, eps - x0) with ``t ~ U[0, 1]``.

Sampling integrates dx/dt = u(x, t) from t = 1 (x ~ N(0, I), exactly the path's marginal there: unlike the
default DDPM schedule there is no start mismatch) down to t = 0 over ``steps`` equal steps:

- ``EulerSampler``: x <- x + (t_next - t) u(x, t); one model evaluation per step;
- ``HeunSampler``: the Euler step, then the average of the velocities at both ends (the trapezoidal
  corrector of Karras et al. 2022); two evaluations per step, second order.

Both expose ``sample(velocity_fn, shape, *, generator=None, noise=None, device="cpu", progress=True, x_T=None)``
like the DDPM samplers; ``velocity_fn(x_t, t)`` gets ``t`` as a float32 tensor of shape ``(B,)`` in [0, 1] (the
caller maps it to the network's step input). Randomness: only the start is random, draw 0 of the noise source
(``noise``, else ``generator``'s draws) as in ``midtecg.diffusion.samplers``.

Accuracy on Gaussian data with the exact velocity (tests/test_diffusion_flow.py; means exact, variance
error of the worst dimension, std 0.3 to 2): Heun 10 steps 2.1 %, 20 steps 0.6 %, 40 steps 0.16 % (second
order); Euler 20 steps 18 %, 50 steps 7.4 % (first order, it shrinks the variance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .noise import NoiseSource
from .samplers import start_chain

__all__ = [
    "VelocityFn",
    "FLOW_SAMPLER_NAMES",
    "flow_time",
    "flow_interpolate",
    "velocity_target",
    "velocity_to_eps_x0",
    "flow_timesteps",
    "FlowSampler",
    "EulerSampler",
    "HeunSampler",
    "make_flow_sampler",
]

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

FLOW_SAMPLER_NAMES: tuple[str, ...] = ("euler", "heun")
DEFAULT_FLOW_STEPS = 20


def flow_time(t, like: torch.Tensor) -> torch.Tensor:
    """Flow times (a float or a (B,) float tensor) shaped to broadcast against ``like`` (batch on axis 0),
    float64 for float64 ``like``, else float32."""
    t = torch.as_tensor(t, device=like.device)
    if not t.dtype.is_floating_point:
        raise TypeError(f"flow time must be a float in [0, 1], got dtype {t.dtype}")
    t = t.to(torch.float64 if like.dtype == torch.float64 else torch.float32)
    return t.reshape(t.shape[0], *([1] * (like.dim() - 1))) if t.dim() == 1 else t


def flow_interpolate(x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
    """x_t = (1 - t) x0 + t noise (``t`` a float or a (B,) float tensor)."""
    t = flow_time(t, x0)
    return (1.0 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """u = noise - x0, the path's velocity (independent of t)."""
    return noise - x0


def velocity_to_eps_x0(u: torch.Tensor, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
    """(eps, x0) implied by a velocity estimate at (x_t, t): x_t + (1 - t) u and x_t - t u."""
    t = flow_time(t, x_t)
    return x_t + (1.0 - t) * u, x_t - t * u


def flow_timesteps(steps: int) -> tuple[float, ...]:
    """``steps + 1`` times evenly spaced from 1 down to 0 (both included)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return tuple(1.0 - i / steps for i in range(steps)) + (0.0,)


class FlowSampler:
    """Shared plumbing of the flow samplers: the time grid, the start, the model call, the progress bar."""

    name = ""
    evaluations_per_step = 1

    def __init__(self, steps: int = DEFAULT_FLOW_STEPS):
        self.times = flow_timesteps(steps)

    @property
    def num_steps(self) -> int:
        """Number of integration steps."""
        return len(self.times) - 1

    @property
    def num_evaluations(self) -> int:
        """Number of model evaluations per sample."""
        return self.num_steps * self.evaluations_per_step

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.num_steps})"

    @staticmethod
    def _velocity(velocity_fn: VelocityFn, x: torch.Tensor, t: float) -> torch.Tensor:
        t_batch = torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device)
        u = velocity_fn(x, t_batch)
        if not isinstance(u, torch.Tensor) or u.shape != x.shape:
            got = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
            raise ValueError(f"velocity_fn returned {got}, expected a tensor of shape {tuple(x.shape)}")
        return u.to(torch.float32)

    def sample(
        self,
        velocity_fn: VelocityFn,
        shape,
        *,
        generator: torch.Generator | None = None,
        noise: NoiseSource | None = None,
        device="cpu",
        progress: bool = True,
        x_T: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Integrate from x_1 ~ N(0, I) (draw 0 of ``noise`` or ``generator``, or ``x_T``) to t = 0; float32
        samples of ``shape`` on ``device``."""
        device = torch.device(device)
        with torch.no_grad():
            x, _ = start_chain(shape, x_T, generator, noise, device)
            pairs = list(zip(self.times[:-1], self.times[1:]))
            for t, t_next in tqdm(pairs, desc=self.name, disable=not progress, leave=False):
                x = self._step(velocity_fn, x, t, t_next)
            return x

    def _step(self, velocity_fn, x, t, t_next):  # pragma: no cover - abstract
        raise NotImplementedError


class EulerSampler(FlowSampler):
    """First-order steps: x <- x + (t_next - t) u(x, t)."""

    name = "euler"

    def _step(self, velocity_fn, x, t, t_next):
        return x + (t_next - t) * self._velocity(velocity_fn, x, t)


class HeunSampler(FlowSampler):
    """Heun's method: an Euler predictor, then the mean of the velocities at both ends of the step."""

    name = "heun"
    evaluations_per_step = 2

    def _step(self, velocity_fn, x, t, t_next):
        u = self._velocity(velocity_fn, x, t)
        guess = x + (t_next - t) * u
        return x + (t_next - t) * 0.5 * (u + self._velocity(velocity_fn, guess, t_next))


def make_flow_sampler(name: str, steps: int | None = None) -> FlowSampler:
    """``"euler"`` or ``"heun"`` over ``steps`` steps (default 20)."""
    key = str(name).lower().strip()
    classes = {"euler": EulerSampler, "heun": HeunSampler}
    if key not in classes:
        raise ValueError(f"unknown flow sampler {name!r}; expected one of {', '.join(FLOW_SAMPLER_NAMES)}")
    return classes[key](DEFAULT_FLOW_STEPS if steps is None else int(steps))
