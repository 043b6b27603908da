"""Discrete-time DDPM noise schedule.

Index convention: ``t`` runs over ``0 .. T-1``; ``x_t`` has the marginal
``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`` with ``alpha_bar_t = prod_{s<=t} (1 - beta_s)``.
``alpha_bar_{-1} = 1`` (the clean signal), so the reverse step out of ``t = 0`` yields the data.

With the default linear schedule (T = 200, beta 1e-4 -> 0.02, method.md section 3) ``alpha_bar_{T-1}`` is
about 0.132: the forward process never reaches pure noise. The samplers nevertheless start from N(0, I) at
``t = T-1``, as the reference implementation does (see ``midtecg.diffusion.samplers``).

``zero_terminal_snr=True`` rescales the schedule as Lin et al. (2024, "Common diffusion noise schedules and
sample steps are flawed", algorithm 1) propose: sqrt(alpha_bar) is shifted and scaled so that its first value
is kept and its last is exactly 0, i.e. ``x_{T-1}`` is pure noise and the samplers' N(0, I) start is the
true marginal. Then ``alpha_bar_{T-1} = 0``, ``beta_{T-1} = 1`` and ``log_snr[T-1] = -inf``; the clean signal
cannot be recovered from an epsilon estimate there (``predict_x0`` divides by zero), which is why the paper
pairs the rescaled schedule with v-prediction (``midtecg.diffusion.parameterization``); the samplers handle
that step with the data prediction.

All tables are computed once, in float64, when the schedule is created (attributes ``betas``, ``alphas``,
``alpha_bars``, ``alpha_bars_prev``, ``posterior_variance``, ... are float64 CPU tensors of length T).
``table(name, device, dtype)`` returns (and caches) a copy on a device in float32 by default; the methods
``add_noise``, ``predict_x0``, ``predict_eps``, ``posterior_mean`` and ``posterior_variance_at`` gather the
per-sample coefficients from those cached copies (float64 when the input is float64, else float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .config import SCHEDULE_KINDS

__all__ = ["NoiseSchedule", "TABLE_NAMES"]

TABLE_NAMES: tuple[str, ...] = (
    "betas",
    "alphas",
    "alpha_bars",
    "alpha_bars_prev",
    "sqrt_alpha_bars",
    "sqrt_one_minus_alpha_bars",
    "posterior_variance",
    "posterior_mean_coef_x0",
    "posterior_mean_coef_xt",
    "log_snr",
)


@dataclass(frozen=True)
class NoiseSchedule:
    """Beta schedule of a discrete DDPM and everything derived from it.

    ``kind="linear"``: betas evenly spaced from ``beta_start`` to ``beta_end`` (the SSSD-ECG default).
    ``kind="cosine"``: Nichol & Dhariwal's ``alpha_bar(t) = f(t+1) / f(0)``,
    ``f(u) = cos(((u / T) + s) / (1 + s) * pi / 2)^2`` with ``s = cosine_s``; betas clipped at 0.999.
    ``beta_start`` / ``beta_end`` are ignored by the cosine schedule.
    ``zero_terminal_snr``: rescale either so that alpha_bar_{T-1} = 0 (module docstring).
    """

    num_steps: int = 200
    kind: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cosine_s: float = 0.008
    zero_terminal_snr: bool = False
    _tables: dict = field(init=False, repr=False, compare=False, hash=False)
    _cache: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {self.num_steps!r}")
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule kind {self.kind!r}; expected one of {', '.join(SCHEDULE_KINDS)}")
        T = self.num_steps
        if self.kind == "linear":
            if not (0.0 < self.beta_start <= self.beta_end < 1.0):
                raise ValueError(
                    f"linear schedule needs 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}"
                )
            betas = torch.linspace(self.beta_start, self.beta_end, T, dtype=torch.float64)
        else:
            if not self.cosine_s >= 0.0:
                raise ValueError(f"cosine_s must be >= 0, got {self.cosine_s}")
            u = torch.arange(T + 1, dtype=torch.float64)
            f = torch.cos((u / T + self.cosine_s) / (1.0 + self.cosine_s) * math.pi / 2) ** 2
            ab = f[1:] / f[0]
            ab_prev = f[:-1] / f[0]
            betas = torch.clamp(1.0 - ab / ab_prev, max=0.999)
        if not isinstance(self.zero_terminal_snr, bool):
            raise ValueError(f"zero_terminal_snr must be a bool, got {self.zero_terminal_snr!r}")
        if self.zero_terminal_snr:
            if T < 2:
                raise ValueError("a zero terminal SNR schedule needs at least 2 steps")
            betas = _rescale_to_zero_terminal_snr(betas)
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        one_minus = 1.0 - alpha_bars
        tables = {
            "betas": betas,
            "alphas": alphas,
            "alpha_bars": alpha_bars,
            "alpha_bars_prev": alpha_bars_prev,
            "sqrt_alpha_bars": alpha_bars.sqrt(),
            "sqrt_one_minus_alpha_bars": one_minus.sqrt(),
            # beta_tilde_t = (1 - ab_{t-1}) / (1 - ab_t) * beta_t; zero at t = 0.
            "posterior_variance": (1.0 - alpha_bars_prev) / one_minus * betas,
            # mu~(x0, x_t) = coef_x0 * x0 + coef_xt * x_t
            "posterior_mean_coef_x0": alpha_bars_prev.sqrt() * betas / one_minus,
            "posterior_mean_coef_xt": alphas.sqrt() * (1.0 - alpha_bars_prev) / one_minus,
            # lambda_t = log(alpha_t / sigma_t) = 0.5 * log(ab / (1 - ab))
            "log_snr": 0.5 * (alpha_bars.log() - one_minus.log()),
        }
        for value in tables.values():
            value.requires_grad_(False)
        object.__setattr__(self, "_tables", tables)
        object.__setattr__(self, "_cache", {})
        # read once here, so that no training or sampling step reads a tensor on the host to know it
        object.__setattr__(self, "_terminal_snr_is_zero", bool(tables["alpha_bars"][-1] == 0.0))

    # ------------------------------------------------------------------ tables
    @property
    def terminal_snr_is_zero(self) -> bool:
        """alpha_bar_{T-1} == 0: the last step holds no trace of the data."""
        return self._terminal_snr_is_zero

    @property
    def T(self) -> int:  # noqa: N802 - the paper's symbol
        return self.num_steps

    @property
    def betas(self) -> torch.Tensor:
        return self._tables["betas"]

    @property
    def alphas(self) -> torch.Tensor:
        return self._tables["alphas"]

    @property
    def alpha_bars(self) -> torch.Tensor:
        return self._tables["alpha_bars"]

    @property
    def alpha_bars_prev(self) -> torch.Tensor:
        return self._tables["alpha_bars_prev"]

    @property
    def posterior_variance(self) -> torch.Tensor:
        """beta_tilde_t, float64, length T (0 at t = 0)."""
        return self._tables["posterior_variance"]

    @property
    def log_snr(self) -> torch.Tensor:
        """lambda_t = log(sqrt(alpha_bar_t) / sqrt(1 - alpha_bar_t)), float64."""
        return self._tables["log_snr"]

    def table(self, name: str, device="cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One of ``TABLE_NAMES`` on ``device`` in ``dtype`` (cached; do not modify the result)."""
        if name not in self._tables:
            raise KeyError(f"unknown schedule table {name!r}; expected one of {', '.join(TABLE_NAMES)}")
        key = (name, torch.device(device), dtype)
        value = self._cache.get(key)
        if value is None:
            value = self._tables[name].to(device=key[1], dtype=dtype)
            self._cache[key] = value
        return value

    def _gather(self, name: str, t, like: torch.Tensor) -> torch.Tensor:
        """Coefficients for steps ``t`` shaped to broadcast against ``like`` (batch on axis 0)."""
        dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
        values = self.table(name, like.device, dtype)
        t = self._as_index(t, like.device)
        out = values[t]
        if t.dim() == 0:
            return out
        if t.dim() != 1 or (like.dim() > 0 and t.shape[0] not in (1, like.shape[0])):
            raise ValueError(f"t must be a scalar or have shape (B,) matching the batch, got {tuple(t.shape)}")
        return out.reshape(t.shape[0], *([1] * (like.dim() - 1)))

    def _as_index(self, t, device) -> torch.Tensor:
        if isinstance(t, torch.Tensor):
            if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
                raise TypeError(f"t must hold integer steps, got dtype {t.dtype}")
            t = t.to(device=device, dtype=torch.long)
        else:
            t = torch.as_tensor(t, dtype=torch.long, device=device)
        # Range check only on CPU (on an accelerator it would force a synchronisation every call;
        # an out-of-range index there still fails inside the gather).
        if t.device.type == "cpu" and t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_steps):
            raise ValueError(f"diffusion steps must lie in [0, {self.num_steps - 1}], got {t.min()}..{t.max()}")
        return t

    # ------------------------------------------------------------------ process
    def coefficients(self, t, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(ab_t), sqrt(1 - ab_t)) shaped to broadcast against ``like``: x_t = a x0 + b eps."""
        return self._gather("sqrt_alpha_bars", t, like), self._gather("sqrt_one_minus_alpha_bars", t, like)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """Sample of q(x_t | x0): sqrt(ab_t) x0 + sqrt(1 - ab_t) noise."""
        return self._gather("sqrt_alpha_bars", t, x0) * x0 + self._gather("sqrt_one_minus_alpha_bars", t, x0) * noise

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
        """x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)."""
        return (x_t - self._gather("sqrt_one_minus_alpha_bars", t, x_t) * eps) / self._gather("sqrt_alpha_bars", t, x_t)

    def predict_eps(self, x_t: torch.Tensor, x0: torch.Tensor, t) -> torch.Tensor:
        """eps = (x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t)."""
        return (x_t - self._gather("sqrt_alpha_bars", t, x_t) * x0) / self._gather("sqrt_one_minus_alpha_bars", t, x_t)

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0) (for t = 0: x0 itself)."""
        return (
            self._gather("posterior_mean_coef_x0", t, x_t) * x0 + self._gather("posterior_mean_coef_xt", t, x_t) * x_t
        )

    def posterior_variance_at(self, t, like: torch.Tensor) -> torch.Tensor:
        """beta_tilde_t shaped to broadcast against ``like``."""
        return self._gather("posterior_variance", t, like)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return {
            "num_steps": self.num_steps,
            "kind": self.kind,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "cosine_s": self.cosine_s,
            "zero_terminal_snr": self.zero_terminal_snr,
        }

    @classmethod
    def from_dict(cls, data: dict) -> NoiseSchedule:
        known = {"num_steps", "kind", "beta_start", "beta_end", "cosine_s", "zero_terminal_snr"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown NoiseSchedule fields: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        if "num_steps" in kwargs:
            kwargs["num_steps"] = int(kwargs["num_steps"])
        for key in ("beta_start", "beta_end", "cosine_s"):
            if key in kwargs:
                kwargs[key] = float(kwargs[key])
        return cls(**kwargs)


def _rescale_to_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024, algorithm 1: sqrt(alpha_bar) -> (sqrt(alpha_bar) - last) * first / (first - last)."""
    root = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    alpha_bars = root.square()
    alphas = torch.cat([alpha_bars[:1], alpha_bars[1:] / alpha_bars[:-1]])
    return 1.0 - alphas
