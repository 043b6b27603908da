"""Samplers for a discrete-time DDPM, independent of any model.

Every sampler shares one interface::

    sampler.sample(eps_fn, shape, *, generator=None, noise=None, device="cpu", progress=True, x_T=None) -> Tensor

``eps_fn(x_t, t)`` receives the current state ``x_t`` (float32, ``shape``) and the step as a long tensor of
shape ``(B,)`` (``B = shape[0]``, all entries equal) and returns the noise estimate of the same shape. The
caller wraps the model in ``eps_fn`` (conditions, classifier-free guidance, cached kernels, autocast).
A sampler built with ``prediction="v"`` takes a v estimate (v = sqrt(ab) eps - sqrt(1 - ab) x0) from the
same function instead and converts it (``midtecg.diffusion.parameterization.v_to_eps_x0``).

Zero terminal SNR (``NoiseSchedule(zero_terminal_snr=True)``, alpha_bar_{T-1} = 0): the first step uses the
data prediction x0_hat, which a v estimate gives exactly (x0_hat = -v there); an epsilon estimate carries
nothing of x0 at that step, and x0_hat = 0 (the mean of centred data, the MMSE estimate when x_{T-1} holds
no trace of x0) is used instead.

How the chain starts (all samplers, kept consistent): at ``t = T-1`` from ``x_T ~ N(0, I)`` (draw 0 of the
noise source), exactly as the reference SSSD-ECG code does, or from the ``x_T`` passed in. Note that
with the default schedule ``alpha_bar_{T-1} = 0.132``: the true marginal q(x_{T-1}) of data with mean mu and
variance s^2 is N(0.363 mu, 0.132 s^2 + 0.868), not N(0, I). The mismatch is part of the reference method
(the trained network has only ever seen q(x_{T-1})); pass ``x_T`` to start elsewhere. Each sampler's
first model evaluation is at ``t = T-1`` and its last at ``t = 0``; the step out of ``t = 0`` goes to the
clean signal (``alpha_bar = 1``) and adds no noise.

Randomness: every draw comes from a noise source (``midtecg.diffusion.noise``), ``noise(shape, draw)``: draw 0
is x_T, draw k the noise added after the k-th model evaluation (DDPM and DDIM with eta > 0; DPM-Solver++ draws
only x_T). Pass ``noise=IndexedNoise(seed, indices, device)`` for one stream per row (rows independent of the
batch), or ``generator=`` (default: the global generator) for consecutive draws of one ``torch.Generator`` on
its own device, moved to ``device`` (a CPU generator gives the same samples whatever device runs the model).
Same source, same output.

- ``DDPMSampler``: ancestral sampling over all T steps, sigma_t^2 = beta_tilde_t, no clipping (the default).
- ``DDIMSampler``: DDIM over ``steps`` evenly spaced steps (T-1 ... 0), ``eta`` scales the noise
  (eta = 1 over all T steps is the ancestral sampler, step for step).
- ``DPMSolverPP2M``: DPM-Solver++ (2M), multistep second order in data prediction, for the discrete
  schedule (lambda from the discrete alpha_bars); the first step and the final step (to the clean signal)
  are first order. Its steps are evenly spaced in lambda by default (``spacing="logsnr"``).

Accuracy with an exact noise predictor on Gaussian data (tests/test_diffusion_samplers.py), started from the
true q(x_{T-1}): every sampler recovers the mean exactly (up to Monte Carlo error); the variance is off by
up to 5 % for ancestral DDPM over 200 steps (beta_tilde is the lower variance choice), 7.4 % for DDIM with 50
steps (first order) and 0.8 % for DPM-Solver++ with 20 log-SNR steps (data std 0.3 to 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .noise import NoiseSource, generator_noise
from .schedule import NoiseSchedule

__all__ = [
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
    "SAMPLER_PREDICTIONS",
    "start_chain",
]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SAMPLER_NAMES: tuple[str, ...] = ("ddpm", "ddim", "dpm++2m")
SPACINGS: tuple[str, ...] = ("linear", "logsnr")
SAMPLER_PREDICTIONS: tuple[str, ...] = ("eps", "v")


def evenly_spaced_timesteps(num_train_steps: int, steps: int) -> tuple[int, ...]:
    """``steps`` distinct integer steps evenly spaced from ``T-1`` down to ``0`` (both included)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= num_train_steps:
        raise ValueError(f"steps must be an integer in [1, {num_train_steps}], got {steps!r}")
    grid = np.rint(np.linspace(num_train_steps - 1, 0, int(steps))).astype(np.int64)
    # Rounding an evenly spaced grid with spacing >= 1 never merges points, but guard anyway.
    assert len(np.unique(grid)) == len(grid)
    return tuple(int(v) for v in grid)


def logsnr_spaced_timesteps(schedule: NoiseSchedule, steps: int) -> tuple[int, ...]:
    """``steps`` distinct integer steps from ``T-1`` down to ``0`` whose log-SNR
    lambda_t = log(sqrt(ab_t) / sqrt(1 - ab_t)) is as evenly spaced as integer steps allow.

    Each point of a uniform lambda grid is mapped to the nearest step; where rounding merges points near
    t = 0 (lambda changes fastest there) they are pushed apart by one step.
    """
    T = schedule.num_steps
    if int(steps) < 3:
        return evenly_spaced_timesteps(T, steps)  # also validates steps; (T-1,) or (T-1, 0)
    lam = schedule.log_snr.numpy().copy()  # decreasing in t
    if not np.isfinite(lam[-1]):  # zero terminal SNR: space the grid over the finite part; T-1 stays first
        lam[-1] = lam[-2]
    grid = np.linspace(lam[-1], lam[0], int(steps))
    ts = np.rint(np.interp(grid, lam[::-1], np.arange(T - 1, -1, -1, dtype=np.float64))).astype(np.int64)
    ts[0], ts[-1] = T - 1, 0
    for i in range(len(ts) - 2, -1, -1):
        ts[i] = max(ts[i], ts[i + 1] + 1)
    ts[0] = T - 1
    for i in range(1, len(ts)):
        ts[i] = min(ts[i], ts[i - 1] - 1)
    assert ts[0] == T - 1 and ts[-1] == 0 and np.all(np.diff(ts) < 0)
    return tuple(int(v) for v in ts)


def make_timesteps(schedule: NoiseSchedule, steps: int, spacing: str = "linear") -> tuple[int, ...]:
    """Evaluation steps (descending, T-1 ... 0) with ``spacing`` "linear" (evenly spaced in t) or
    "logsnr" (evenly spaced in lambda)."""
    if spacing == "linear":
        return evenly_spaced_timesteps(schedule.num_steps, steps)
    if spacing == "logsnr":
        return logsnr_spaced_timesteps(schedule, steps)
    raise ValueError(f"unknown timestep spacing {spacing!r}; expected one of {', '.join(SPACINGS)}")


def start_chain(
    shape, x_T: torch.Tensor | None, generator: torch.Generator | None, noise: NoiseSource | None, device
) -> tuple[torch.Tensor, NoiseSource]:
    """Where every sampler starts: the noise source it draws from (``noise``, else the draws of ``generator``;
    not both), and the chain's first state, ``x_T`` (checked, copied to float32 on ``device``) or draw 0 of
    that source."""
    if noise is not None and generator is not None:
        raise ValueError("pass a noise source or a generator, not both")
    noise = generator_noise(generator, device) if noise is None else noise
    shape = tuple(int(s) for s in shape)
    if len(shape) < 1 or shape[0] < 1:
        raise ValueError(f"shape must start with a positive batch size, got {shape}")
    if x_T is not None:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {shape}")
        return x_T.detach().to(device=device, dtype=torch.float32).clone(), noise
    return noise(shape, 0).to(device), noise


class Sampler:
    """Shared plumbing: timesteps, the initial state, the model call and the progress bar."""

    name: str = ""

    def __init__(self, schedule: NoiseSchedule, timesteps: Sequence[int], prediction: str = "eps"):
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        if prediction not in SAMPLER_PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; expected one of {', '.join(SAMPLER_PREDICTIONS)}")
        self.schedule = schedule
        self.prediction = prediction
        self.timesteps: tuple[int, ...] = tuple(int(t) for t in timesteps)
        # Python floats (from the float64 tables) used as step coefficients: the float32 state is only
        # ever multiplied by exactly-rounded scalars.
        self._ab = [float(v) for v in schedule.alpha_bars]

    @property
    def num_steps(self) -> int:
        """Number of model evaluations per sample."""
        return len(self.timesteps)

    def alpha_bar(self, t: int) -> float:
        """alpha_bar_t with alpha_bar_{-1} = 1 (the clean signal)."""
        return 1.0 if t < 0 else self._ab[t]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(T={self.schedule.num_steps}, steps={self.num_steps})"

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _call(eps_fn: EpsFn, x: torch.Tensor, t: int) -> torch.Tensor:
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        out = eps_fn(x, t_batch)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"eps_fn returned {got}, expected a tensor of shape {tuple(x.shape)}")
        return out.to(torch.float32)

    def _predict(self, eps_fn: EpsFn, x: torch.Tensor, t: int, eps: bool = True, x0: bool = True):
        """(eps_hat, x0_hat) at step t from the model output, each None unless asked for (see the module
        docstring for alpha_bar = 0)."""
        out = self._call(eps_fn, x, t)
        ab = self._ab[t]
        a, b = math.sqrt(ab), math.sqrt(1.0 - ab)
        if self.prediction == "v":  # v_to_eps_x0 with scalar coefficients
            return (b * x + a * out) if eps else None, (a * x - b * out) if x0 else None
        if not x0:
            return out, None
        return out, (x - b * out) / a if ab > 0.0 else torch.zeros_like(x)

    def _progress(self, progress: bool):
        return tqdm(self.timesteps, desc=self.name or type(self).__name__, disable=not progress, leave=False)

    def sample(
        self,
        eps_fn: EpsFn,
        shape,
        *,
        generator: torch.Generator | None = None,
        noise: NoiseSource | None = None,
        device="cpu",
        progress: bool = True,
        x_T: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw samples of ``shape`` (float32 on ``device``) with ``noise`` or ``generator``; see the module
        docstring."""
        device = torch.device(device)
        with torch.no_grad():
            x, noise = start_chain(shape, x_T, generator, noise, device)
            return self._run(eps_fn, x, noise, progress)

    def _run(self, eps_fn, x, noise, progress):  # pragma: no cover - abstract
        raise NotImplementedError


class DDPMSampler(Sampler):
    """Ancestral DDPM sampling over all T steps, as in the reference SSSD-ECG code.

    x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) * eps_hat) / sqrt(alpha_t) + sqrt(beta_tilde_t) z,
    no noise at t = 0, no clipping. Where alpha_t = 0 (the last step of a zero terminal SNR schedule) the
    same posterior mean is written with the data prediction: sqrt(ab_{t-1}) x0_hat.
    """

    name = "ddpm"

    def __init__(self, schedule: NoiseSchedule, prediction: str = "eps"):
        super().__init__(schedule, range(schedule.num_steps - 1, -1, -1), prediction)
        self._betas = [float(v) for v in schedule.betas]
        self._sigmas = [math.sqrt(float(v)) for v in schedule.posterior_variance]

    def _run(self, eps_fn, x, noise, progress):
        for draw, t in enumerate(self._progress(progress), start=1):
            beta = self._betas[t]
            eps, x0 = self._predict(eps_fn, x, t, eps=beta < 1.0, x0=beta >= 1.0)
            if beta < 1.0:
                x = (x - (beta / math.sqrt(1.0 - self._ab[t])) * eps) / math.sqrt(1.0 - beta)
            else:
                x = math.sqrt(self.alpha_bar(t - 1)) * x0
            if t > 0:
                x = x + self._sigmas[t] * noise(x.shape, draw).to(x.device)
        return x


class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021) over ``steps`` steps (evenly spaced in t by default), noise scale ``eta``.

    From step t to the next step s (s = -1 after t = 0, alpha_bar_{-1} = 1):
    x0_hat = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t),
    sigma = eta * sqrt((1 - ab_s) / (1 - ab_t)) * sqrt(1 - ab_t / ab_s),
    x_s = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps_hat + sigma z.
    With eta = 1 and all T steps, sigma^2 = beta_tilde_t and the mean equals the DDPM posterior mean, so
    this reproduces ``DDPMSampler`` (it asks for the same draws).
    """

    name = "ddim"

    def __init__(
        self,
        schedule: NoiseSchedule,
        steps: int = 50,
        eta: float = 0.0,
        spacing: str = "linear",
        prediction: str = "eps",
    ):
        super().__init__(schedule, make_timesteps(schedule, steps, spacing), prediction)
        if not eta >= 0.0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = float(eta)
        self.spacing = spacing

    def __repr__(self) -> str:
        return (
            f"DDIMSampler(T={self.schedule.num_steps}, steps={self.num_steps}, eta={self.eta}, "
            f"spacing={self.spacing!r})"
        )

    def _run(self, eps_fn, x, noise, progress):
        nexts = self.timesteps[1:] + (-1,)
        for draw, (t, s) in enumerate(zip(self._progress(progress), nexts), start=1):
            eps, x0 = self._predict(eps_fn, x, t)
            ab_t, ab_s = self.alpha_bar(t), self.alpha_bar(s)
            sigma = self.eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
            x = math.sqrt(ab_s) * x0 + math.sqrt(max(1.0 - ab_s - sigma * sigma, 0.0)) * eps
            if sigma > 0.0:
                x = x + sigma * noise(x.shape, draw).to(x.device)
        return x


class DPMSolverPP2M(Sampler):
    """DPM-Solver++ (2M) (Lu et al. 2022), data prediction, for the discrete schedule.

    With alpha_t = sqrt(ab_t), sigma_t = sqrt(1 - ab_t), lambda_t = log(alpha_t / sigma_t) and the data
    prediction x0_i = (x - sigma_{t_i} eps_hat) / alpha_{t_i} at the evaluation steps t_0 = T-1 > ... > 0,
    the exact solution of the diffusion ODE from t_i to t_{i+1} is
    x_{t_{i+1}} = sigma_{t_{i+1}} / sigma_{t_i} x_{t_i} + sigma_{t_{i+1}} * int_{lambda_i}^{lambda_{i+1}} e^lambda x0(lambda) d lambda.
    Holding x0 constant gives the first-order step (DDIM):
    x_{i+1} = sigma_{i+1} / sigma_i x_i - alpha_{i+1} (e^{-h} - 1) x0_i,   h = lambda_{i+1} - lambda_i;
    the multistep second-order update replaces x0_i by D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}, with
    r = h_{i-1} / h. The first step (no history) is first order; the final step from t = 0 to the clean
    signal (sigma = 0, lambda = +inf) is first order too, which reduces to x = x0_hat at t = 0.

    Steps are evenly spaced in lambda by default (``spacing="logsnr"``): on the default linear schedule,
    steps evenly spaced in t leave lambda jumping from 2.3 to 4.6 over the last interval (t = 10 -> 0), and
    on Gaussian data with an exact noise predictor 20 such steps miss the variance by up to 26 % (std 0.3),
    against under 1 % with log-SNR spacing. ``spacing="linear"`` is available.
    """

    name = "dpm++2m"

    def __init__(self, schedule: NoiseSchedule, steps: int = 20, spacing: str = "logsnr", prediction: str = "eps"):
        super().__init__(schedule, make_timesteps(schedule, steps, spacing), prediction)
        self.spacing = spacing

    def __repr__(self) -> str:
        return f"DPMSolverPP2M(T={self.schedule.num_steps}, steps={self.num_steps}, spacing={self.spacing!r})"

    def _run(self, eps_fn, x, noise, progress):
        steps = self.timesteps
        prev_x0 = None
        prev_h = None
        for i, t in enumerate(self._progress(progress)):
            _, x0 = self._predict(eps_fn, x, t, eps=False)
            if i == len(steps) - 1:
                return x0  # first-order step to alpha_bar = 1
            ab_t, ab_s = self.alpha_bar(t), self.alpha_bar(steps[i + 1])
            sigma_t = math.sqrt(1.0 - ab_t)
            alpha_s, sigma_s = math.sqrt(ab_s), math.sqrt(1.0 - ab_s)
            h = _log_snr(alpha_s, sigma_s) - _log_snr(math.sqrt(ab_t), sigma_t)  # +inf out of alpha_bar = 0
            if prev_x0 is None or math.isinf(prev_h):
                d = x0
            else:
                r = prev_h / h
                d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * prev_x0
            x = (sigma_s / sigma_t) * x - (alpha_s * math.expm1(-h)) * d
            prev_x0, prev_h = x0, h
        return x  # not reached: the loop returns at its last step


def _log_snr(alpha: float, sigma: float) -> float:
    """lambda = log(alpha / sigma); -inf at alpha = 0 (then the step below lands on alpha_s x0_hat + sigma_s x)."""
    return -math.inf if alpha == 0.0 else math.log(alpha / sigma)


def make_sampler(
    name: str,
    schedule: NoiseSchedule,
    steps: int | None = None,
    eta: float = 0.0,
    spacing: str | None = None,
    prediction: str = "eps",
) -> Sampler:
    """Build a sampler by name: ``"ddpm"`` (all T steps), ``"ddim"`` (default 50 steps, linear spacing) or
    ``"dpm++2m"`` (default 20 steps, log-SNR spacing). ``eta`` is only meaningful for DDIM; ``spacing``
    (None: the sampler's default) for DDIM and DPM-Solver++; ``prediction`` ("eps" or "v") says what the
    function handed to ``sample`` returns."""
    key = str(name).lower().strip()
    if key == "ddpm":
        if steps is not None and int(steps) != schedule.num_steps:
            raise ValueError(
                f"the ancestral DDPM sampler runs all {schedule.num_steps} steps; for fewer steps use "
                f"make_sampler('ddim', schedule, steps={steps}, eta=1.0) (respaced ancestral sampling)"
            )
        if eta not in (0.0, 1.0):
            raise ValueError("eta is not used by the ddpm sampler; use 'ddim' to set eta")
        if spacing not in (None, "linear"):
            raise ValueError("the ddpm sampler runs every step; spacing does not apply")
        return DDPMSampler(schedule, prediction)
    if key == "ddim":
        return DDIMSampler(
            schedule, 50 if steps is None else int(steps), eta=eta, spacing=spacing or "linear", prediction=prediction
        )
    if key in ("dpm++2m", "dpmpp2m", "dpm++", "dpmsolver++"):
        if eta != 0.0:
            raise ValueError("eta is not used by the dpm++2m sampler")
        return DPMSolverPP2M(
            schedule, 20 if steps is None else int(steps), spacing=spacing or "logsnr", prediction=prediction
        )
    raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLER_NAMES)}")
