"""Spectral distance between a real and a synthetic set: per lead, the distance in dB between the sets' mean
log power spectra (Welch).

:func:`welch_psd_distance` gives it on two sets of signals (see the function for the exact definition);
:func:`log_psd` (the per-record log spectra) and :func:`log_psd_distance` (the distance between two mean log
spectra) are its two halves, so that many subsets of one set cost one spectral analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal as sps

from midtecg.data.errors import DataError

from .fidelity import check_signals, lead_names_for

__all__ = ["welch_psd_distance", "log_psd", "log_psd_distance"]


def welch_psd_distance(
    real,
    synth,
    *,
    fs: float = 100.0,
    nperseg: int = 256,
    fmin: float = 0.5,
    fmax: float | None = None,
    metric: str = "l1",
    psd_floor: float = 1e-10,
    lead_names: Sequence[str] | None = None,
) -> dict:
    """Per-lead distance between the mean log power spectra of two sets, in dB.

    Definition. For each record and lead, the Welch power spectral density ``P(f)`` (mV^2/Hz;
    ``scipy.signal.welch``, Hann window, ``nperseg`` samples (256 = 2.56 s at 100 Hz, 0.39 Hz bins), 50 %
    overlap, mean detrending). Its log ``S(f) = 10 log10(P(f) + psd_floor)`` in dB (the floor, 1e-10
    mV^2/Hz = -100 dB, keeps flat leads finite). Each set's spectrum per lead is the mean of ``S`` over its
    records (mean of logs: robust to a few huge-amplitude records). On the bins with
    ``fmin <= f <= fmax`` (default 0.5 Hz, above baseline wander, up to Nyquist):

    - ``metric="l1"``: ``D = mean_f |S_real(f) - S_synth(f)|`` (mean absolute dB difference);
    - ``metric="l2"``: ``D = sqrt(mean_f (S_real(f) - S_synth(f))^2)`` (RMS dB difference).

    Means over bins rather than sums, so ``D`` does not depend on the frequency resolution. 0 for identical
    spectra; a 2x amplitude error everywhere gives ``20 log10 2 = 6.02`` dB.

    Returns ``{"per_lead": {lead: D}, "mean": mean over leads, "max", "metric", "unit": "dB",
    "freqs": (F,) Hz of the bins used, "mean_log_psd_real", "mean_log_psd_synth": (C, F) dB,
    "fs", "nperseg", "band": [fmin, fmax], "n_real", "n_synth"}``.
    """
    x = check_signals(real, "real")
    y = check_signals(synth, "synth")
    if x.shape[1:] != y.shape[1:]:
        raise DataError(f"Welch distance: real and synth need the same leads and length: {x.shape} vs {y.shape}")
    freqs, sr = log_psd(x, fs=fs, nperseg=nperseg, psd_floor=psd_floor)
    _, ss = log_psd(y, fs=fs, nperseg=nperseg, psd_floor=psd_floor)
    out = log_psd_distance(
        sr.mean(axis=0), ss.mean(axis=0), freqs, fmin=fmin, fmax=fmax, metric=metric, lead_names=lead_names
    )
    return {
        **out,
        "fs": float(fs),
        "nperseg": int(min(nperseg, x.shape[-1])),
        "n_real": int(x.shape[0]),
        "n_synth": int(y.shape[0]),
    }


def log_psd(x, *, fs: float, nperseg: int = 256, psd_floor: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Per-record Welch log spectra ``10 log10(P(f) + psd_floor)`` in dB: ``(freqs (F,), S (N, C, F))``.

    The definition of :func:`welch_psd_distance` (Hann window, ``min(nperseg, L)`` samples, 50 % overlap,
    mean detrending), computed in blocks of records.
    """
    a = check_signals(x, "signals")
    seg = int(min(nperseg, a.shape[-1]))
    out = None
    for start in range(0, a.shape[0], 256):
        freqs, p = sps.welch(a[start : start + 256].astype(np.float64), fs=fs, nperseg=seg, axis=-1)
        if out is None:
            out = np.empty(a.shape[:2] + (freqs.size,))
        out[start : start + 256] = 10.0 * np.log10(p + psd_floor)
    return freqs, out


def log_psd_distance(
    mean_real,
    mean_synth,
    freqs,
    *,
    fmin: float = 0.5,
    fmax: float | None = None,
    metric: str = "l1",
    lead_names: Sequence[str] | None = None,
) -> dict:
    """The distance of :func:`welch_psd_distance` between two mean log spectra ``(C, F)`` (dB) on ``freqs``."""
    if metric not in ("l1", "l2"):
        raise DataError(f"Welch distance: metric must be 'l1' or 'l2', got {metric!r}")
    sr, ss, freqs = np.asarray(mean_real), np.asarray(mean_synth), np.asarray(freqs)
    names = lead_names_for(lead_names, sr.shape[0])
    top = float(freqs[-1]) if fmax is None else float(fmax)
    band = (freqs >= fmin) & (freqs <= top)
    if not band.any():
        raise DataError(f"Welch distance: no frequency bin in [{fmin}, {top}] Hz")
    diff = sr[:, band] - ss[:, band]
    dist = np.mean(np.abs(diff), axis=1) if metric == "l1" else np.sqrt(np.mean(diff**2, axis=1))
    return {
        "per_lead": {name: float(v) for name, v in zip(names, dist)},
        "mean": float(dist.mean()),
        "max": float(dist.max()),
        "metric": metric,
        "unit": "dB",
        "freqs": freqs[band],
        "mean_log_psd_real": sr[:, band],
        "mean_log_psd_synth": ss[:, band],
        "band": [float(fmin), top],
    }
