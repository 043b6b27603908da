"""Distribution-level distances between a real and a synthetic set (unpaired; the sets may differ in size).

- :func:`frechet_distance`: Frechet distance between Gaussians fitted to two embedding sets
  ``||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^{1/2})`` (FID-style; the embeddings come from a classifier
  trained on real ECGs, computed by the caller). The matrix square root is taken in the symmetric form
  ``Tr (S_r S_s)^{1/2} = Tr (S_r^{1/2} S_s S_r^{1/2})^{1/2}`` with eigen-decompositions, which is exact
  for positive semi-definite covariances, never complex and stable when a covariance is singular
  (``n <= dim``). The estimate is biased upwards for small ``n`` (it is not zero for two samples of one
  distribution): always compare against a real-vs-real floor at the same ``n``
  (:func:`~midtecg.evaluation.floors.embedding_distances` does, and makes it robust to outlying records).
- :func:`kid`: Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
  MMD^2 estimate with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over
  ``n_subsets`` random subsets of ``subset_size`` records drawn without replacement from each set
  (100 subsets of 1000 in the paper), reported with its standard deviation over subsets. Unbiased:
  about 0 (and possibly negative) for two samples of one distribution.
- :func:`radial_winsorizer`: bounded influence for embeddings: rows beyond a robust radius of the real set
  are pulled back onto it.
- :func:`precision_recall`: k-NN precision and recall (Kynkaanniemi et al. 2019).
- :func:`mmd`: kernel MMD^2 directly on signals (flattened, block-averaged in time by 4 by default,
  optionally centred per lead), Gaussian kernel ``exp(-||x - y||^2 / (2 sigma^2))`` with the median heuristic
  (``sigma`` = median Euclidean distance between distinct points of the pooled sample), unbiased
  U-statistic estimate, computed in row blocks so N = 1000 + 1000 (or much more) fits in little memory;
  :func:`median_bandwidth`, :func:`gaussian_gram` and :func:`mmd2_from_gram` give the same estimate for many
  subsets of one pool from one kernel matrix.
- :func:`welch_psd_distance`: per lead, the distance in dB between the sets' mean log power spectra (see
  the function for the exact definition); :func:`log_psd` (per record) and :func:`log_psd_distance` are its
  two halves.
- :func:`real_floor`: any metric between two disjoint random halves of the real set: the value a perfect
  generator would reach with that many records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import signal as sps

from midtecg.data.errors import DataError

from .fidelity import check_signals, lead_names_for

__all__ = [
    "frechet_distance",
    "frechet_distance_from_stats",
    "kid",
    "radial_winsorizer",
    "precision_recall",
    "mmd",
    "median_bandwidth",
    "gaussian_gram",
    "mmd2_from_gram",
    "welch_psd_distance",
    "log_psd",
    "log_psd_distance",
    "real_floor",
    "signal_features",
]

_BLOCK_ELEMENTS = 8_000_000  # float64 elements per distance block (64 MB)


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _embeddings(x, name: str) -> np.ndarray:
    arr = check_signals(x, name, ndim=2, min_records=2)
    return arr.astype(np.float64, copy=False)


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
    a = _embeddings(emb_real, "emb_real")
    b = _embeddings(emb_synth, "emb_synth")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"Frechet distance: embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


# ------------------------------------------------------------------------------------------------------ KID
def _mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    m, n = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def _cubic(x: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    k = x @ y.T
    k /= d
    k += 1.0
    return k * k * k


def kid(emb_real, emb_synth, *, n_subsets: int = 100, subset_size: int = 1000, rng=None) -> dict:
    """Kernel Inception Distance between two embedding sets (Binkowski et al. 2018).

    ``n_subsets`` times, draw ``m = min(subset_size, n_r, n_s)`` records without replacement from each set
    and compute the unbiased MMD^2 with ``k(x, y) = (x.y / d + 1)^3``; report the mean and standard
    deviation over subsets. When both sets have at most ``subset_size`` records and the same size, every
    subset would be the whole of both sets: the estimate is computed once (``n_subsets`` = 1, ``kid_std``
    = 0); pass a smaller ``subset_size`` (e.g. n / 2) for a spread.

    Returns ``{"kid", "kid_std", "n_subsets", "subset_size", "n_real", "n_synth", "dim"}``.
    """
    a = _embeddings(emb_real, "emb_real")
    b = _embeddings(emb_synth, "emb_synth")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"KID: embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1 or subset_size < 2:
        raise DataError(f"KID: need n_subsets >= 1 and subset_size >= 2, got {n_subsets}, {subset_size}")
    gen = _rng(rng)
    d = a.shape[1]
    m = min(subset_size, a.shape[0], b.shape[0])
    if m == a.shape[0] == b.shape[0]:
        n_subsets = 1  # every "subset" would be the whole of both sets: one evaluation is enough
    vals = np.empty(n_subsets)
    for s in range(n_subsets):  # loop over subsets; each subset is one vectorised kernel computation
        x = a[gen.choice(a.shape[0], m, replace=False)]
        y = b[gen.choice(b.shape[0], m, replace=False)]
        vals[s] = _mmd2_unbiased(_cubic(x, x, d), _cubic(y, y, d), _cubic(x, y, d))
    return {
        "kid": float(vals.mean()),
        "kid_std": float(vals.std(ddof=1)) if n_subsets > 1 else 0.0,
        "n_subsets": int(n_subsets),
        "subset_size": int(m),
        "n_real": int(a.shape[0]),
        "n_synth": int(b.shape[0]),
        "dim": int(d),
    }


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
    a = _embeddings(reference, "reference")
    centre = np.median(a, axis=0)
    radius = np.linalg.norm(a - centre, axis=1)
    med = float(np.median(radius))
    r_max = med + float(cutoff) * 1.4826 * float(np.median(np.abs(radius - med)))
    if not r_max > 0.0:
        r_max = float(radius.max()) if radius.max() > 0 else 1.0

    def winsorize(x) -> np.ndarray:
        b = _embeddings(x, "rows")
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
    a = _embeddings(emb_real, "emb_real")
    b = _embeddings(emb_synth, "emb_synth")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"precision/recall: embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if not 1 <= k < min(a.shape[0], b.shape[0]):
        raise DataError(
            f"precision/recall: need 1 <= k < records in each set, got k={k} with "
            f"{a.shape[0]} real and {b.shape[0]} synthetic records"
        )

    def kth_radius2(z: np.ndarray) -> np.ndarray:
        d2 = np.maximum(_sq_norms(z)[:, None] + _sq_norms(z)[None, :] - 2.0 * (z @ z.T), 0.0)
        return np.partition(d2, k, axis=1)[:, k]  # index 0 is the record itself (distance 0)

    def covered(query: np.ndarray, centres: np.ndarray, r2: np.ndarray) -> np.ndarray:
        hit = np.zeros(query.shape[0], dtype=bool)
        rows = max(1, _BLOCK_ELEMENTS // centres.shape[0])
        nc = _sq_norms(centres)
        for start in range(0, query.shape[0], rows):
            q = query[start : start + rows]
            d2 = _sq_norms(q)[:, None] + nc[None, :] - 2.0 * (q @ centres.T)
            hit[start : start + rows] = np.any(d2 <= r2[None, :], axis=1)
        return hit

    return {
        "precision": float(covered(b, a, kth_radius2(a)).mean()),
        "recall": float(covered(a, b, kth_radius2(b)).mean()),
        "k": int(k),
        "n_real": int(a.shape[0]),
        "n_synth": int(b.shape[0]),
    }


# ------------------------------------------------------------------------------------------ MMD on signals
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


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _kernel_sum(x: np.ndarray, y: np.ndarray, gamma: float, same: bool) -> float:
    """sum_{i,j} exp(-gamma ||x_i - y_j||^2), diagonal excluded when ``same``; row blocks bound memory."""
    nx, ny = _sq_norms(x), _sq_norms(y)
    rows = max(1, _BLOCK_ELEMENTS // max(1, y.shape[0]))
    total = 0.0
    for start in range(0, x.shape[0], rows):
        stop = min(x.shape[0], start + rows)
        d2 = nx[start:stop, None] + ny[None, :] - 2.0 * (x[start:stop] @ y.T)
        np.maximum(d2, 0.0, out=d2)
        k = np.exp(-gamma * d2)
        if same:
            idx = np.arange(start, stop)
            k[idx - start, idx] = 0.0
        total += float(k.sum())
    return total


def median_bandwidth(features, *, max_samples: int = 1000, rng=None) -> float:
    """Median heuristic: the median Euclidean distance between distinct rows of ``features`` ``(N, D)``.

    A random subset of ``max_samples`` rows when larger. 1.0 when all rows are identical (any bandwidth then
    gives the same kernel values).
    """
    z = _embeddings(features, "features")
    gen = _rng(rng)
    if z.shape[0] > max_samples:
        z = z[gen.choice(z.shape[0], max_samples, replace=False)]
    nz = _sq_norms(z)
    d2 = nz[:, None] + nz[None, :] - 2.0 * (z @ z.T)
    iu = np.triu_indices(z.shape[0], k=1)
    sigma = float(np.sqrt(np.median(np.maximum(d2[iu], 0.0))))
    return sigma if sigma > 0.0 else 1.0


def gaussian_gram(x, y=None, *, bandwidth: float) -> np.ndarray:
    """Gaussian kernel matrix ``exp(-||x_i - y_j||^2 / (2 bandwidth^2))`` of feature rows (``y`` = ``x`` if None)."""
    a = _embeddings(x, "x")
    b = a if y is None else _embeddings(y, "y")
    if not bandwidth > 0:
        raise DataError(f"Gaussian kernel: bandwidth must be > 0, got {bandwidth}")
    d2 = _sq_norms(a)[:, None] + _sq_norms(b)[None, :] - 2.0 * (a @ b.T)
    return np.exp(-np.maximum(d2, 0.0) / (2.0 * bandwidth**2))


def mmd2_from_gram(gram: np.ndarray, index_a, index_b) -> float:
    """Unbiased MMD^2 between the rows ``index_a`` and the rows ``index_b`` of a precomputed kernel matrix
    of the pooled records (the same estimate as :func:`mmd`, for many subsets of one pool at little cost)."""
    ia, ib = np.asarray(index_a), np.asarray(index_b)
    if ia.size < 2 or ib.size < 2:
        raise DataError("MMD: each set needs at least 2 records")
    return _mmd2_unbiased(gram[np.ix_(ia, ia)], gram[np.ix_(ib, ib)], gram[np.ix_(ia, ib)])


def mmd(
    real,
    synth,
    *,
    bandwidth: float | None = None,
    downsample: int = 4,
    center: bool = False,
    max_median_samples: int = 1000,
    rng=None,
) -> dict:
    """Unbiased kernel MMD^2 between two sets of signals (or any ``(N, D)`` features), Gaussian kernel.

    Records are flattened by :func:`signal_features` (``downsample`` / ``center`` options). The bandwidth
    is ``sigma = bandwidth`` if given, else the median heuristic: the median Euclidean distance between
    distinct records of the pooled set (a random subset of ``max_median_samples`` records when larger).
    ``MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``,
    about 0 (possibly slightly negative) for two samples of one distribution, at most 2; for two copies
    of one set it is ``-2 (1 - mean off-diagonal kernel) / n``.

    ``downsample=4`` (default; 100 Hz -> 25 Hz block means, 3,000 values per 12-lead record) keeps the ECG
    waves and suppresses broadband content, and the distances concentrate less than in 12,000
    dimensions: on 100 vs 100 PTB-XL records, white noise of the same variance gives MMD^2 = 0.029 against a
    real-vs-real floor of 0.0001 +- 0.0008 (35 floor SDs), while at full rate it is 0.0013 (2 SDs). Use
    ``downsample=1`` for the full-rate signal; high-frequency content is checked by
    :func:`welch_psd_distance`. In any case Gaussian MMD on raw signals mostly sees amplitude and
    low-frequency shape: records of different patients are nearly orthogonal vectors.

    Returns ``{"mmd2", "mmd" (sqrt of max(mmd2, 0)), "bandwidth", "dim", "n_real", "n_synth"}``.
    """
    x = signal_features(real, downsample=downsample, center=center, name="real")
    y = signal_features(synth, downsample=downsample, center=center, name="synth")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"MMD: real and synth have different sizes after flattening: {x.shape} vs {y.shape}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise DataError("MMD: each set needs at least 2 records")
    if bandwidth is None:
        sigma = median_bandwidth(np.concatenate([x, y]), max_samples=max_median_samples, rng=rng)
    else:
        sigma = float(bandwidth)
        if not sigma > 0:
            raise DataError(f"MMD: bandwidth must be > 0, got {bandwidth}")
    gamma = 1.0 / (2.0 * sigma**2)
    m, n = x.shape[0], y.shape[0]
    kxx = _kernel_sum(x, x, gamma, True) / (m * (m - 1))
    kyy = _kernel_sum(y, y, gamma, True) / (n * (n - 1))
    kxy = _kernel_sum(x, y, gamma, False) / (m * n)
    mmd2 = float(kxx + kyy - 2.0 * kxy)
    return {
        "mmd2": mmd2,
        "mmd": math.sqrt(max(mmd2, 0.0)),
        "bandwidth": float(sigma),
        "dim": int(x.shape[1]),
        "n_real": int(m),
        "n_synth": int(n),
    }


# -------------------------------------------------------------------------------------------- Welch PSD
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
    gen = _rng(rng)
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
