"""ECG sets as float64 feature rows ``(N, D)``, the input of the distance and kernel methods of the suite.

- :func:`feature_rows`: embeddings or other features ``(N, D)``, checked (finite, at least 2 rows) as float64;
- :func:`signal_features`: signals ``(N, C, L)`` flattened to such rows (optionally block-averaged in time and
  centred per lead);
- :func:`sq_norms`: the squared Euclidean norm of each row, for pairwise squared distances
  ``||x||^2 + ||y||^2 - 2 x.y``; :data:`BLOCK_ELEMENTS`: how many of those distances are computed at once by
  the blocked pairwise loops (64 MB of float64).
"""

from __future__ import annotations

import numpy as np

from midtecg.data.errors import DataError

from .fidelity import check_signals

__all__ = ["BLOCK_ELEMENTS", "feature_rows", "signal_features", "sq_norms"]

BLOCK_ELEMENTS = 8_000_000  # float64 elements per distance block (64 MB)


def feature_rows(x, name: str) -> np.ndarray:
    """``x`` as float64 rows ``(N, D)``: 2-D, finite, at least 2 rows; a :class:`DataError` naming ``name`` if not."""
    arr = check_signals(x, name, ndim=2, min_records=2)
    return arr.astype(np.float64, copy=False)


def signal_features(x, *, downsample: int = 1, center: bool = False, name: str = "signals") -> np.ndarray:
    """Signals ``(N, C, L)`` (or features ``(N, D)``) -> float64 ``(N, D)`` rows for kernel / distance methods.

    ``center``: subtract each record's per-lead mean (removes baseline offsets). ``downsample``: average
    non-overlapping blocks of that many samples (a boxcar anti-alias filter; a trailing partial block is
    dropped). Both apply to 3-D signals only; 2-D input (embeddings) is returned as float64 unchanged.
    """
    arr = check_signals(x, name, ndim=None)
    if arr.ndim == 2:
        return arr.astype(np.float64, copy=False)
    if int(downsample) < 1:
        raise DataError(f"{name}: downsample must be >= 1, got {downsample}")
    out = arr.astype(np.float64)
    if center:
        out = out - out.mean(axis=-1, keepdims=True)
    f = int(downsample)
    if f > 1:
        n, c, length = out.shape
        if length // f < 1:
            raise DataError(f"{name}: downsample {f} longer than the signal ({length} samples)")
        out = out[..., : length // f * f].reshape(n, c, length // f, f).mean(axis=-1)
    return out.reshape(out.shape[0], -1)


def sq_norms(x: np.ndarray) -> np.ndarray:
    """``||x_i||^2`` for each row of ``x`` ``(N, D)``."""
    return np.einsum("ij,ij->i", x, x)
