"""Distribution-level distances between two embedding sets (unpaired; the sets may differ in size), and the
real-vs-real floor of any such distance.

- :func:`frechet_distance`: Frechet distance between Gaussians fitted to two embedding sets
  ``||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^{1/2})`` (FID-style; the embeddings come from a classifier
  trained on real ECGs, computed by the caller). The matrix square root is taken in the symmetric form
  ``Tr (S_r S_s)^{1/2} = Tr (S_r^{1/2} S_s S_r^{1/2})^{1/2}`` with eigen-decompositions, which is exact
  for positive semi-definite covariances, never complex and stable when a covariance is singular
  (``n <= dim``). The estimate is biased upwards for small ``n`` (it is not zero for two samples of one
  distribution): always compare against a real-vs-real floor at the same ``n``
  (:func:`~midtecg.evaluation.set_distances.embedding_distances` does, and makes it robust to outlying records).
- :func:`radial_winsorizer`: bounded influence for embeddings: rows beyond a robust radius of the real set
  are pulled back onto it.
- :func:`precision_recall`: k-NN precision and recall (Kynkaanniemi et al. 2019).
- :func:`real_floor`: any metric between two disjoint random halves of the real set: the value a perfect
  generator would reach with that many records.

The kernel distances (KID, MMD) are in :mod:`~midtecg.evaluation.kernel_distances`, the spectral one in
:mod:`~midtecg.evaluation.spectra`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from midtecg.data.errors import DataError

from .feature_rows import BLOCK_ELEMENTS, feature_rows, sq_norms

__all__ = ["frechet_distance", "frechet_distance_from_stats", "radial_winsorizer", "precision_recall", "real_floor"]


# -------------------------------------------------------------------------------------------------- Frechet
def _sqrt_psd(mat: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((mat + mat.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2), squared units.

    ``||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1^{1/2} sigma2 sigma1^{1/2})^{1/2})``; the
    covariances must be symmetric positive semi-definite (tiny negative eigenvalues from round-off are
    clipped to 0). Result clipped at 0.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise DataError(
            f"Frechet distance: inconsistent shapes mu1 {mu1.shape}, sigma1 {s1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {s2.shape}"
        )
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.all(np.isfinite(a)):
            raise DataError(f"Frechet distance: {name} contains non-finite values")
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def frechet_distance(emb_real, emb_synth) -> float:
    """Frechet distance between two embedding sets ``(n_r, d)`` and ``(n_s, d)`` (n >= 2 each).

    Means and unbiased (ddof=1) covariances, then :func:`frechet_distance_from_stats`. With ``n < d`` the
    covariances are singular; the value is still well defined but strongly biased: report ``n`` and the
    real-vs-real floor (:func:`real_floor`) with it.
    """
    a = feature_rows(emb_real, "emb_real")
    b = feature_rows(emb_synth, "emb_synth")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"Frechet distance: embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


# --------------------------------------------------------------------------------- robustness, P / R
def radial_winsorizer(reference, *, cutoff: float = 5.0) -> Callable[[np.ndarray], np.ndarray]:
    """A map that pulls outlying rows back to a radius set by ``reference`` ``(N, D)`` (bounded influence).

    Centre ``c`` = coordinate-wise median of ``reference``; radius of a row = ``||x - c||``; limit
    ``r_max = median radius + cutoff * 1.4826 * MAD(radius)`` (``cutoff`` robust standard deviations of the
    reference's radii beyond their median; both statistics ignore up to half the rows). The returned function
    maps ``x`` to ``c + (x - c) min(1, r_max / ||x - c||)``: rows inside the limit are unchanged, a row far
    outside is moved radially onto it, so no single record (a 28.5 mV artefact, say) can carry more weight
    in a mean or a covariance than a record at the limit. With the default cutoff of 5, samples of a Gaussian
    are rarely moved (a fraction 1.3e-5 of them in 4 dimensions, 1.2e-6 in 64); heavy-tailed embeddings
    lose more of their tail (6 % of PTB-XL training records in a classifier's 512-dim embedding).
    """
    a = feature_rows(reference, "reference")
    centre = np.median(a, axis=0)
    radius = np.linalg.norm(a - centre, axis=1)
    med = float(np.median(radius))
    r_max = med + float(cutoff) * 1.4826 * float(np.median(np.abs(radius - med)))
    if not r_max > 0.0:
        r_max = float(radius.max()) if radius.max() > 0 else 1.0

    def winsorize(x) -> np.ndarray:
        b = feature_rows(x, "rows")
        if b.shape[1] != a.shape[1]:
            raise DataError(f"winsorizer: rows have {b.shape[1]} features, the reference {a.shape[1]}")
        r = np.linalg.norm(b - centre, axis=1)
        out = b.copy()
        far = r > r_max
        out[far] = centre + (b[far] - centre) * (r_max / r[far])[:, None]
        return out

    return winsorize


def precision_recall(emb_real, emb_synth, *, k: int = 3) -> dict:
    """Improved precision and recall of Kynkaanniemi et al. 2019 (NeurIPS), with ``k``-NN balls (paper: k=3).

    Each real record spans a ball of radius its distance to its ``k``-th nearest other real record; the real
    manifold is the union of those balls. ``precision`` = fraction of synthetic records inside the real
    manifold (are they realistic?); ``recall`` = fraction of real records inside the synthetic manifold,
    built the same way from the synthetic set (is the real variety covered?). Both in [0, 1]; below 1 even for
    two samples of one distribution at finite n: compare with a real-vs-real floor at the same n.

    Returns ``{"precision", "recall", "k", "n_real", "n_synth"}``.
    """
    a = feature_rows(emb_real, "emb_real")
    b = feature_rows(emb_synth, "emb_synth")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"precision/recall: embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if not 1 <= k < min(a.shape[0], b.shape[0]):
        raise DataError(
            f"precision/recall: need 1 <= k < records in each set, got k={k} with "
            f"{a.shape[0]} real and {b.shape[0]} synthetic records"
        )

    def kth_radius2(z: np.ndarray) -> np.ndarray:
        d2 = np.maximum(sq_norms(z)[:, None] + sq_norms(z)[None, :] - 2.0 * (z @ z.T), 0.0)
        return np.partition(d2, k, axis=1)[:, k]  # index 0 is the record itself (distance 0)

    def covered(query: np.ndarray, centres: np.ndarray, r2: np.ndarray) -> np.ndarray:
        hit = np.zeros(query.shape[0], dtype=bool)
        rows = max(1, BLOCK_ELEMENTS // centres.shape[0])
        nc = sq_norms(centres)
        for start in range(0, query.shape[0], rows):
            q = query[start : start + rows]
            d2 = sq_norms(q)[:, None] + nc[None, :] - 2.0 * (q @ centres.T)
            hit[start : start + rows] = np.any(d2 <= r2[None, :], axis=1)
        return hit

    return {
        "precision": float(covered(b, a, kth_radius2(a)).mean()),
        "recall": float(covered(a, b, kth_radius2(b)).mean()),
        "k": int(k),
        "n_real": int(a.shape[0]),
        "n_synth": int(b.shape[0]),
    }


# ----------------------------------------------------------------------------------------------- floor
def real_floor(fn: Callable, real, rng=None, *, n_repeats: int = 1, **kwargs):
    """``fn(half_a, half_b, **kwargs)`` for two disjoint random halves of ``real`` (split on axis 0).

    The value a generator indistinguishable from the real data would reach, *for sets of half the size*:
    size-biased metrics (Frechet distance, NN-based ones) must be compared with a synthetic value computed
    at the same ``n`` (e.g. ``fn(half_a, synth[:len(half_b)])``). ``real`` is an array or a tuple / list of
    arrays aligned on axis 0 (each is split the same way and passed as ``fn((a1, a2, ...), (b1, b2, ...))``).
    ``kwargs`` go to ``fn``; ``rng`` is this function's own (the split), so give ``fn`` a seed with
    ``functools.partial(fn, rng=...)``.

    Returns ``fn``'s result for ``n_repeats == 1``. For more repeats (new split each time): for float
    results ``{"mean", "std", "values"}``; for dict results ``{"mean": {key: ...}, "std": {key: ...},
    "values": [dict, ...]}`` over the keys whose values are numbers.
    """
    parts = tuple(real) if isinstance(real, (tuple, list)) else (real,)
    arrays = [np.asarray(p) for p in parts]
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise DataError("real_floor: the arrays in `real` have different numbers of records")
    if n < 4:
        raise DataError(f"real_floor: need at least 4 records to split, got {n}")
    if n_repeats < 1:
        raise DataError(f"real_floor: n_repeats must be >= 1, got {n_repeats}")
    gen = np.random.default_rng(rng)
    results = []
    for _ in range(n_repeats):
        perm = gen.permutation(n)
        ia, ib = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        a = tuple(x[ia] for x in arrays)
        b = tuple(x[ib] for x in arrays)
        if len(arrays) == 1:
            a, b = a[0], b[0]
        results.append(fn(a, b, **kwargs))
    if n_repeats == 1:
        return results[0]
    if all(isinstance(r, (int, float, np.floating, np.integer)) for r in results):
        v = np.asarray(results, dtype=np.float64)
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)), "values": [float(t) for t in v]}
    if all(isinstance(r, dict) for r in results):
        keys = [
            k
            for k, val in results[0].items()
            if isinstance(val, (int, float, np.floating, np.integer)) and not isinstance(val, bool)
        ]
        mean = {k: float(np.mean([r[k] for r in results])) for k in keys}
        std = {k: float(np.std([r[k] for r in results], ddof=1)) for k in keys}
        return {"mean": mean, "std": std, "values": results}
    return {"values": results}
