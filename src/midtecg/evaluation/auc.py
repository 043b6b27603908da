"""ROC-AUC on NumPy arrays: the macro average over classes and its bootstrap interval.

:func:`macro_auc` ignores the classes that do not have both positives and negatives (and says which);
:func:`bootstrap_auc_ci` resamples test records with replacement, fully vectorised over the resamples (the
resamples are integer weights; AUC is the weighted Mann-Whitney statistic with ties counted as one half,
identical to ``sklearn.metrics.roc_auc_score``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["macro_auc", "bootstrap_auc_ci"]


def _check_auc_inputs(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if s.ndim == 1:
        s = s[:, None]
    if y.shape != s.shape or y.ndim != 2:
        raise ValueError(f"y_true {np.shape(y_true)} and y_score {np.shape(y_score)} must have the same shape (N, k)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be 0/1")
    if not np.isfinite(s).all():
        raise ValueError("y_score has non-finite values")
    return y.astype(bool), s


def _weighted_auc(y: np.ndarray, s: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """ROC-AUC per class for each row of integer sample weights (bootstrap multiplicities).

    y (N, k) bool, s (N, k), weights (B, N) non-negative integers (None = one row of ones). Returns
    (B, k); NaN where a row has no positive or no negative weight for a class. Ties count one half
    (Mann-Whitney), as in sklearn's roc_auc_score.
    """
    n, k = y.shape
    w = np.ones((1, n), dtype=np.int64) if weights is None else np.asarray(weights)
    if not np.issubdtype(w.dtype, np.integer):
        raise TypeError("weights must be integers")
    w = w.astype(np.int32 if n < 2**20 else np.int64, copy=False)
    out = np.full((w.shape[0], k), np.nan)
    for c in range(k):
        order = np.argsort(s[:, c], kind="stable")
        sc = s[order, c]
        pos = y[order, c]
        wc = w[:, order]
        w_neg_each = wc * ~pos
        total_pos = wc[:, pos].sum(axis=1, dtype=np.float64)
        total_neg = w_neg_each.sum(axis=1, dtype=np.float64)
        group_starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        if len(group_starts) == n:  # no ties: each positive beats the negative weight strictly below it
            neg_below = np.cumsum(w_neg_each, axis=1, dtype=w.dtype) - w_neg_each
            twice_num = 2.0 * (wc[:, pos] * neg_below[:, pos]).sum(axis=1, dtype=np.float64)
        else:  # per distinct score: positives beat the negatives below and tie with those at the same score
            w_pos = np.add.reduceat(wc * pos, group_starts, axis=1)
            w_neg = np.add.reduceat(w_neg_each, group_starts, axis=1)
            neg_below = np.cumsum(w_neg, axis=1, dtype=w.dtype) - w_neg
            twice_num = (w_pos * (2 * neg_below + w_neg)).sum(axis=1, dtype=np.float64)
        den = 2.0 * total_pos * total_neg
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, c] = np.where(den > 0, twice_num / np.where(den > 0, den, 1.0), np.nan)
    return out


def _class_name(i: int, class_names: Sequence[str] | None):
    return str(class_names[i]) if class_names is not None else int(i)


def macro_auc(y_true, y_score, *, class_names: Sequence[str] | None = None, return_dropped: bool = False):
    """Macro ROC-AUC over the classes that have both positives and negatives in ``y_true``.

    Returns a float (NaN when no class qualifies), or ``(auc, dropped)`` with ``return_dropped=True``,
    ``dropped`` listing the ignored classes (names when ``class_names`` is given, else indices).
    """
    y, s = _check_auc_inputs(y_true, y_score)
    n_pos = y.sum(axis=0)
    valid = (n_pos > 0) & (n_pos < len(y))
    dropped = [_class_name(i, class_names) for i in np.flatnonzero(~valid)]
    auc = float(_weighted_auc(y[:, valid], s[:, valid], None)[0].mean()) if valid.any() else float("nan")
    return (auc, dropped) if return_dropped else auc


def bootstrap_auc_ci(
    y_true, y_score, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, class_names: Sequence[str] | None = None
) -> dict:
    """Macro AUC with a percentile bootstrap interval over test records (resampled with replacement).

    Classes without positives or negatives in the full set are dropped (as in :func:`macro_auc`); within
    a resample, the macro average runs over the kept classes that still have both. Returns a JSON-ready
    dict: ``auc`` (point estimate on the full set), ``ci_low``, ``ci_high``, ``std`` (of the bootstrap
    distribution), ``n``, ``n_boot``, ``alpha``, ``dropped``.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    y, s = _check_auc_inputs(y_true, y_score)
    auc, dropped = macro_auc(y, s, class_names=class_names, return_dropped=True)
    n = len(y)
    n_pos = y.sum(axis=0)
    valid = (n_pos > 0) & (n_pos < n)
    result = {
        "auc": auc,
        "ci_low": float("nan"),
        "ci_high": float("nan"),
        "std": float("nan"),
        "n": int(n),
        "n_boot": int(n_boot),
        "alpha": float(alpha),
        "dropped": dropped,
    }
    if not valid.any():
        return result
    yv, sv = y[:, valid], s[:, valid]
    rng = np.random.default_rng(seed)
    chunk = max(1, int(4e6 // n))
    boots = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        per_class = _weighted_auc(yv, sv, counts)
        defined = ~np.isnan(per_class)
        with np.errstate(invalid="ignore", divide="ignore"):
            boots.append(np.where(defined, per_class, 0.0).sum(axis=1) / defined.sum(axis=1))
    dist = np.concatenate(boots)
    dist = dist[np.isfinite(dist)]
    if len(dist):
        lo, hi = np.percentile(dist, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        result.update(ci_low=float(lo), ci_high=float(hi), std=float(dist.std()))
    return result
