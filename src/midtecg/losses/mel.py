"""Multi-resolution mel-spectrogram loss of MIDT-ECG (method.md section 4).

Each lead is a separate signal: ``(B, C, L)`` becomes ``(B*C, L)``. Per scale (n_fft, hop, n_mels), with a
periodic Hann window of length n_fft, a centred STFT with reflect padding, the magnitude spectrum ``|S|`` and
Slaney-style mel filters ``fb`` (Slaney mel scale, Slaney area normalisation, 0 Hz to Nyquist), the mel
magnitude is ``M = fb @ |S|`` and the scale's loss is

    mean|log10(max(M_hat, 1e-5)^2) - log10(max(M, 1e-5)^2)| + mean|M_hat - M|,

summed over the scales: the magnitude is clamped first, then squared (audiotools' order, method.md section 4).
``mel_log_order="square_first"`` gives midtecg's order before that was corrected, ``log10(max(M^2, 1e-5))``
(a floor 1e-5 on the power instead of the magnitude: it flattens the log term wherever M < 3.2e-3), kept only
to reproduce old runs and ablations. The computation runs in float32 with autocast disabled (inputs in bf16/fp16 are cast
up; float64 inputs are computed in float64, e.g. for gradcheck), and is differentiable. Windows and filterbanks are built once per (parameters, device, dtype) and cached.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from midtecg.losses.config import LOG_ORDERS, MEL_SCALE_NAMES

__all__ = [
    "MelScale",
    "PAPER_SCALES",
    "SMALL_SCALES",
    "RHYTHM_SCALES",
    "SCALE_PRESETS",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "mel_magnitude",
    "multi_resolution_mel_loss",
    "MelSpectrogramLoss",
    "resolve_scales",
    "LOG_ORDERS",
]


class MelScale(NamedTuple):
    n_fft: int
    hop_length: int
    n_mels: int


PAPER_SCALES: tuple[MelScale, ...] = (MelScale(512, 128, 64), MelScale(256, 64, 128))
SMALL_SCALES: tuple[MelScale, ...] = (MelScale(64, 16, 16),)
# The paper's scales plus one window over the whole 10 s record at 100 Hz (0.1 Hz bins, 256 bands of about
# 0.2 Hz): a regular beat train has sharp lines at multiples of the heart rate there, an irregular one smears
# them (harmonic k by k times the RR jitter), so this scale sees rhythm that 5 s windows and 0.8 Hz bands miss.
RHYTHM_SCALES: tuple[MelScale, ...] = PAPER_SCALES + (MelScale(1024, 256, 256),)
SCALE_PRESETS: dict[str, tuple[MelScale, ...]] = dict(zip(MEL_SCALE_NAMES, (PAPER_SCALES, SMALL_SCALES, RHYTHM_SCALES)))

# Slaney's Auditory Toolbox mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above
# (27 mel per factor 6.4 in frequency).
_F_SP = 200.0 / 3.0
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(freq) -> np.ndarray:
    """Slaney mel scale (not HTK)."""
    f = np.asarray(freq, dtype=np.float64)
    linear = f / _F_SP
    safe = np.maximum(f, _BREAK_HZ)
    return np.where(f >= _BREAK_HZ, _BREAK_MEL + np.log(safe / _BREAK_HZ) / _LOG_STEP, linear)


def mel_to_hz(mel) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    m = np.asarray(mel, dtype=np.float64)
    return np.where(m >= _BREAK_MEL, _BREAK_HZ * np.exp(_LOG_STEP * (m - _BREAK_MEL)), _F_SP * m)


def _filterbank_np(fs: float, n_fft: int, n_mels: int, f_min: float, f_max: float | None) -> np.ndarray:
    if n_fft < 2 or n_mels < 1:
        raise ValueError(f"need n_fft >= 2 and n_mels >= 1, got n_fft={n_fft}, n_mels={n_mels}")
    nyquist = fs / 2.0
    f_max = nyquist if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= nyquist:
        raise ValueError(f"need 0 <= f_min < f_max <= {nyquist} Hz, got f_min={f_min}, f_max={f_max}")
    bins = np.linspace(0.0, nyquist, n_fft // 2 + 1)  # centre frequency of each rfft bin
    # n_mels triangles need n_mels + 2 edges, evenly spaced on the mel scale
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lo) / (centre - lo)
    falling = (hi - bins[None, :]) / (hi - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney area normalisation: each triangle has unit area in Hz (height 2 / width)
    weights *= 2.0 / (hi - lo)
    return weights


def mel_filterbank(
    fs: float,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device="cpu",
) -> torch.Tensor:
    """Slaney mel filterbank ``(n_mels, n_fft // 2 + 1)`` (Slaney scale and area normalisation, the same
    filters as librosa's ``filters.mel(htk=False, norm="slaney")``). Built in float64, returned in ``dtype``.
    With few frequency bins per band some filters can be empty (all zero), as in librosa."""
    fb = _filterbank_np(float(fs), int(n_fft), int(n_mels), float(f_min), f_max)
    return torch.as_tensor(fb, dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _cached_filterbank(fs, n_fft, n_mels, f_min, f_max, device, dtype) -> torch.Tensor:
    return mel_filterbank(fs, n_fft, n_mels, f_min, f_max, dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _cached_window(n_fft, device, dtype) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=dtype, device=device)


def resolve_scales(scales) -> tuple[MelScale, ...]:
    """A preset name (``"paper"``, ``"small"``, ``"rhythm"``) or a sequence of (n_fft, hop_length, n_mels)
    triples."""
    if isinstance(scales, str):
        if scales not in SCALE_PRESETS:
            raise ValueError(f"unknown mel scale preset {scales!r}; expected one of {', '.join(SCALE_PRESETS)}")
        return SCALE_PRESETS[scales]
    out = tuple(MelScale(*(int(v) for v in s)) for s in scales)
    if not out:
        raise ValueError("at least one mel scale is needed")
    for s in out:
        if s.n_fft < 2 or s.hop_length < 1 or s.n_mels < 1:
            raise ValueError(f"invalid mel scale {s}")
    return out


def _as_signals(x: torch.Tensor) -> torch.Tensor:
    """(..., L) -> (N, L), every leading index (batch, lead) a separate signal."""
    if x.dim() < 1:
        raise ValueError("expected a signal tensor of shape (..., L)")
    return x.reshape(-1, x.shape[-1])


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float32, or float64 when an input is float64 (never lower than float32)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def mel_magnitude(
    x: torch.Tensor,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    fs: float = 100.0,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:
    """Mel magnitude ``fb @ |STFT(x)|`` of signals ``(..., L)`` -> ``(N, n_mels, frames)``, float32
    (float64 for float64 input).

    Centred STFT (reflect padding of n_fft // 2, which must be shorter than L), periodic Hann window,
    win_length = n_fft, frames = 1 + L // hop_length. Runs with autocast disabled.
    """
    signals = _as_signals(x)
    length = signals.shape[-1]
    if n_fft // 2 >= length:
        raise ValueError(
            f"signal length {length} too short for reflect padding of n_fft={n_fft} (needs > {n_fft // 2})"
        )
    device = signals.device
    dtype = _compute_dtype(signals)
    with torch.autocast(device_type=device.type, enabled=False):
        signals = signals.to(dtype)
        window = _cached_window(int(n_fft), device, dtype)
        fb = _cached_filterbank(
            float(fs),
            int(n_fft),
            int(n_mels),
            float(f_min),
            None if f_max is None else float(f_max),
            device,
            dtype,
        )
        spec = torch.stft(
            signals,
            n_fft=int(n_fft),
            hop_length=int(hop_length),
            win_length=int(n_fft),
            window=window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        ).abs()  # (N, n_fft // 2 + 1, frames)
        return torch.matmul(fb, spec)


def multi_resolution_mel_loss(
    x_hat: torch.Tensor,
    x: torch.Tensor,
    scales=PAPER_SCALES,
    *,
    fs: float = 100.0,
    f_min: float = 0.0,
    f_max: float | None = None,
    clamp_min: float = 1e-5,
    log_order: str = "clamp_first",
) -> torch.Tensor:
    """MIDT multi-resolution mel loss between ``x_hat`` and ``x`` (same shape ``(..., L)``), a float32 scalar
    (float64 if an input is float64).

    Per scale: mean|log10(max(M_hat, clamp_min)^2) - log10(max(M, clamp_min)^2)| + mean|M_hat - M|;
    summed over ``scales`` ("paper", "small" or (n_fft, hop, n_mels) triples). ``log_order="square_first"``:
    log10(max(M^2, clamp_min)) instead (the order used before the correction; see the module docstring).
    """
    if log_order not in LOG_ORDERS:
        raise ValueError(f"unknown mel log order {log_order!r}; expected one of {', '.join(LOG_ORDERS)}")
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and {tuple(x.shape)}")
    scales = resolve_scales(scales)
    n = _as_signals(x_hat).shape[0]
    dtype = _compute_dtype(x_hat, x)
    with torch.autocast(device_type=x_hat.device.type, enabled=False):
        # one STFT call per scale for prediction and target together
        both = torch.cat([_as_signals(x_hat).to(dtype), _as_signals(x).to(dtype)], dim=0)
        total = None
        for scale in scales:
            mel = mel_magnitude(both, scale.n_fft, scale.hop_length, scale.n_mels, fs, f_min, f_max)
            m_hat, m = mel[:n], mel[n:]
            log_term = (_log_power(m_hat, clamp_min, log_order) - _log_power(m, clamp_min, log_order)).abs().mean()
            lin_term = (m_hat - m).abs().mean()
            term = log_term + lin_term
            total = term if total is None else total + term
    return total


def _log_power(m: torch.Tensor, clamp_min: float, log_order: str) -> torch.Tensor:
    if log_order == "clamp_first":
        return torch.log10(m.clamp_min(clamp_min).square())
    return torch.log10(m.square().clamp_min(clamp_min))


class MelSpectrogramLoss(nn.Module):
    """``multi_resolution_mel_loss`` as a module (no parameters, nothing in the state dict)."""

    def __init__(
        self,
        scales="paper",
        fs: float = 100.0,
        f_min: float = 0.0,
        f_max: float | None = None,
        log_order: str = "clamp_first",
    ):
        super().__init__()
        if log_order not in LOG_ORDERS:
            raise ValueError(f"unknown mel log order {log_order!r}; expected one of {', '.join(LOG_ORDERS)}")
        self.scales = resolve_scales(scales)
        self.fs = float(fs)
        self.f_min = float(f_min)
        self.f_max = f_max
        self.log_order = log_order

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return multi_resolution_mel_loss(
            x_hat,
            x,
            self.scales,
            fs=self.fs,
            f_min=self.f_min,
            f_max=self.f_max,
            log_order=self.log_order,
        )

    def extra_repr(self) -> str:
        return f"scales={[tuple(s) for s in self.scales]}, fs={self.fs}"
