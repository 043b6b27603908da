"""Per-lead data scaling: the network may work on x / scale instead of millivolts.

``scaling="std"``: one scale per model lead, the standard deviation of that lead over every sample of
every training record (pooled, about the lead's mean; float64 accumulation). No centring: ECG voltages
are referenced to the baseline, and the per-lead means of the 1,924 training records of the shared PTB-XL
subset lie within 0.004 mV of zero (standard deviations 0.16-0.34 mV). The scales are computed from the training split only, stored in the model's config.json
(``signal.lead_scale``, millivolts per model unit) and multiplied back in by ``midtecg.sample``, so every
sampler and ``midtecg generate`` return millivolts. ``"none"`` (the paper's choice, method.md section 1:
"not normalised") leaves the signals in millivolts.

Why it can help a small model: the diffusion noise has unit variance while PTB-XL leads have a standard
deviation of about 0.2-0.4 mV, so at the default schedule most steps leave the signal far below the noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["SCALINGS", "lead_scale"]

SCALINGS: tuple[str, ...] = ("none", "std")


def lead_scale(signals: torch.Tensor | np.ndarray, kind: str, lead_names=None) -> np.ndarray | None:
    """Per-lead scale (C,) float32 of signals ``(N, C, L)`` for ``kind`` in ``SCALINGS``; None for "none".

    Raises ValueError for an unknown kind, no signals, or a lead that is constant (named by ``lead_names``
    when given)."""
    if kind not in SCALINGS:
        raise ValueError(f"unknown data scaling {kind!r}; expected one of {', '.join(SCALINGS)}")
    if kind == "none":
        return None
    import torch  # not at the top: a config naming a scaling is checked without torch

    x = torch.as_tensor(signals)
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[2] < 2:
        raise ValueError(f"per-lead scaling needs signals of shape (N >= 1, C, L >= 2), got {tuple(x.shape)}")
    scale = np.array([float(x[:, c].double().std()) for c in range(x.shape[1])], dtype=np.float64)
    flat = [c for c in range(len(scale)) if not np.isfinite(scale[c]) or scale[c] <= 1e-8]
    if flat:
        names = [lead_names[c] if lead_names is not None else str(c) for c in flat]
        raise ValueError(
            f"per-lead scaling: lead(s) {', '.join(names)} are constant or not finite in the training split"
        )
    return scale.astype(np.float32)
