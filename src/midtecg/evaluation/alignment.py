"""Alignment-invariant similarity between 12-lead records: is one record a shifted, rescaled copy of another?

Two records are compared lead by lead after removing what a trivial transformation of a copy changes:

- **amplitude and offset**: the Pearson correlation of each lead over the compared samples (invariant to
  a positive gain and a baseline offset per lead);
- **time shift**: the correlation is computed at every lag ``tau`` with ``|tau| <= max_lag`` over the
  overlap of the two records only (``L - |tau|`` samples), so a copy shifted circularly *or* with padded
  edges (zeros, the edge value, anything) matches its source exactly at the right lag;
- one lag for all leads (a shifted copy shifts every lead by the same amount).

The **aligned similarity** of records ``a`` and ``b`` is ``max_tau mean_leads r_lead(tau)`` (in [-1, 1]; 1
for a copy up to shift, per-lead gain and offset) and the **aligned distance** is ``sqrt(2 (1 - s))``: the
Euclidean distance between the two records with every lead of the overlap standardised to zero mean and
unit norm (divided by ``sqrt(leads)``), at the best lag. It lies in [0, 2]: 0 for a copy, ``sqrt(2)`` = 1.414
for unrelated signals. A lead that is constant over the overlap (a flat line) has correlation 0.

Cost. The exact distance needs one cross-correlation per lead per pair of records. Against a reference set
of thousands of records that is too much, so :func:`aligned_neighbors` first shortlists, for every query,
the ``n_candidates`` references nearest in a shift-invariant summary (:func:`spectral_signatures`: the
magnitude spectra of the standardised leads and of their differences; a circular shift does not change it
at all and a padded shift little), then computes the exact aligned similarity with those candidates only,
with FFTs in vectorised blocks of pairs. A copy's signature equals (circular shift, gain, offset) or nearly
equals (padded shift, noise) its source's, so the source is shortlisted: on PTB-XL, for 99.7 % of
edge-padded copies shifted by up to half the record and for every copy with 0.05 or 0.1 mV of noise, the
source was among the five nearest signatures of 1,924 training records. For unrelated records the
shortlist may miss the true best match, which only makes their similarity lower: the error is on the side of
calling real records *less* alike than they are. The audit measures the holdout with the same shortlist, so
its yardstick carries the same error.

At each candidate pair the best lag is found on a coarse score (lead-summed cross-correlation divided by
the overlap length) and the exact mean per-lead Pearson correlation is computed at the ``_REFINE`` best
coarse lags; for a shifted copy the coarse score peaks at the shift, where the exact value is 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from midtecg.data.errors import DataError

from .fidelity import check_signals

__all__ = [
    "spectral_signatures",
    "nearest_signature_distances",
    "aligned_similarity_pairs",
    "aligned_neighbors",
    "similarity_to_distance",
]

_BLOCK_VALUES = 4_000_000  # float64 values per lag-by-lead block of pairs (32 MB per temporary)
_EPS = 1e-12
_CHUNK = 256  # records per block when computing signatures
_REFINE = 4  # best coarse lags at which the exact correlation is computed
_FLAT = 1e-9  # variance per sample (leads are at unit RMS) below which a lead counts as flat over an overlap


def _standardised(a: np.ndarray) -> np.ndarray:
    """Records ``(N, C, L)`` as float64 with every lead at mean 0 and unit RMS (a constant lead: zeros).

    Pearson correlations do not change under this per-lead affine map; it keeps every later sum at order
    one, so that a lead that is flat over the compared samples is recognised by an absolute tolerance.
    """
    z = np.array(a, dtype=np.float64)
    mean = z.mean(axis=-1, keepdims=True)
    z -= mean
    rms = np.sqrt(np.einsum("ncl,ncl->nc", z, z) / z.shape[-1])[..., None]
    flat = rms <= 1e-9 * (1.0 + np.abs(mean))  # a constant lead leaves only round-off (~1e-16 of its value)
    z *= np.divide(1.0, rms, out=np.zeros_like(rms), where=~flat)
    return z


def similarity_to_distance(similarity) -> np.ndarray:
    """Aligned distance ``sqrt(2 (1 - s))`` of aligned similarities ``s`` (clipped to [-1, 1])."""
    s = np.clip(np.asarray(similarity, dtype=np.float64), -1.0, 1.0)
    return np.sqrt(2.0 * (1.0 - s))


def spectral_signatures(x) -> np.ndarray:
    """Shift- and gain-invariant summary ``(N, 2 C F)`` of records ``(N, C, L)``, unit norm per row.

    Two halves of equal weight: the magnitude spectrum of every standardised lead, and that of its
    standardised circular first difference (``F = L // 2 + 1`` bins per lead; each half scaled to unit
    norm). A circular shift leaves both unchanged. A shift with padded edges adds the padded segment; the
    difference removes constant padding exactly, which keeps a padded copy nearest to its source where the
    plain spectrum, moved by a baseline offset in the padding, would not (on 300 edge-padded copies of PTB-XL
    records shifted by up to half the record, the source ranked first for 99 % and within the first five
    for 99.7 %). Flat records give a zero row.
    """
    a = check_signals(x, "records", ndim=3)
    n_bins = a.shape[-1] // 2 + 1
    out = np.empty((a.shape[0], 2 * a.shape[1] * n_bins), dtype=np.float32)
    for start in range(0, a.shape[0], _CHUNK):  # chunks bound the float64 temporaries
        z = _standardised(a[start : start + _CHUNK])
        halves = []
        for part in (z, _standardised(z - np.roll(z, 1, axis=-1))):  # circular difference: shift-invariant
            mag = np.abs(sfft.rfft(part.astype(np.float32), axis=-1)).reshape(z.shape[0], -1)  # a shortlist
            norm = np.linalg.norm(mag, axis=1, keepdims=True)
            halves.append(np.divide(mag, norm * math.sqrt(2.0), out=np.zeros_like(mag), where=norm > _EPS))
        out[start : start + _CHUNK] = np.concatenate(halves, axis=1)
    return out


def _cumulative(z: np.ndarray) -> np.ndarray:
    """``c[p, ..., k] = sum of z**(p+1) over the first k samples`` for p = 0, 1: ``(2, N, C, L + 1)``."""
    out = np.zeros((2,) + z.shape[:-1] + (z.shape[-1] + 1,))
    np.cumsum(z, axis=-1, out=out[0, ..., 1:])
    np.cumsum(z * z, axis=-1, out=out[1, ..., 1:])
    return out


def _overlap_sums(c: np.ndarray, lag: np.ndarray, side: str) -> np.ndarray:
    """Sums of ``z`` and ``z**2`` over the samples compared at ``lag`` ``(P, m)``, from ``c`` ``(2, P, C, L+1)``.

    Convention (see :func:`aligned_similarity_pairs`): at lag ``tau >= 0`` the query contributes ``q[tau:]``
    and the reference ``r[:L - tau]``; at ``tau < 0`` the query ``q[:L + tau]`` and the reference ``r[-tau:]``.
    Returns ``(2, P, C, m)``.
    """
    length = c.shape[-1] - 1
    a = np.abs(lag)[None, :, None, :]
    head = np.take_along_axis(c, np.broadcast_to(length - a, c.shape[:3] + a.shape[-1:]), axis=-1)
    tail = c[..., -1:] - np.take_along_axis(c, np.broadcast_to(a, c.shape[:3] + a.shape[-1:]), axis=-1)
    late = (lag >= 0) if side == "query" else (lag < 0)
    return np.where(late[None, :, None, :], tail, head)


def _similarity(q: np.ndarray, r: np.ndarray, pairs: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned similarity of records ``q[i]``, ``r[j]`` for the given pairs (validated arrays, any float dtype).

    Two steps per pair, both from one cross-spectrum per lead: (1) a coarse score at every lag, the
    lead-summed cross-correlation divided by the overlap length (one inverse FFT per pair); (2) the exact
    mean per-lead Pearson correlation over the overlap at the ``_REFINE`` best coarse lags, each lead's
    cross-correlation at those lags evaluated as a direct inverse DFT sum. A shifted copy peaks in the
    coarse score at its shift, where the exact correlation is 1.
    """
    n_leads, length = q.shape[1:]
    lags = np.arange(-max_lag, max_lag + 1)
    n_overlap = (length - np.abs(lags)).astype(np.float64)
    n_fft = sfft.next_fast_len(length + max_lag, real=True)  # no wrap-around for |lag| <= max_lag
    lag_index = lags % n_fft  # where each lag sits in the zero-padded circular cross-correlation
    freqs = np.arange(n_fft // 2 + 1)
    weight = np.where((freqs == 0) | (2 * freqs == n_fft), 1.0, 2.0) / n_fft  # irfft as a real DFT sum
    n_refine = min(_REFINE, lags.size)
    phase = weight[:, None] * np.exp((2j * np.pi / n_fft) * np.outer(freqs, lags))  # (F, lags): inverse DFT terms
    sim = np.empty(pairs.shape[0])
    best = np.empty(pairs.shape[0], dtype=np.int64)
    rows = max(1, _BLOCK_VALUES // (n_leads * freqs.size))
    for start in range(0, pairs.shape[0], rows):
        i, j = pairs[start : start + rows, 0], pairs[start : start + rows, 1]
        ui, inv_i = np.unique(i, return_inverse=True)
        uj, inv_j = np.unique(j, return_inverse=True)
        zq, zr = _standardised(q[ui]), _standardised(r[uj])  # only the records this block compares
        cross = sfft.rfft(zq, n=n_fft, axis=-1)[inv_i] * np.conj(sfft.rfft(zr, n=n_fft, axis=-1)[inv_j])
        coarse = sfft.irfft(cross.sum(axis=1), n=n_fft, axis=-1)[:, lag_index] / n_overlap
        top = np.argpartition(-coarse, n_refine - 1, axis=1)[:, :n_refine]  # (P, m) lag positions
        xc = np.matmul(cross, np.moveaxis(phase[:, top], 0, 1)).real  # (P, C, m): sum_t q[t] r[t - tau]
        n = n_overlap[top][:, None, :]
        s_q, s_qq = _overlap_sums(_cumulative(zq)[:, inv_i], lags[top], "query")
        s_r, s_rr = _overlap_sums(_cumulative(zr)[:, inv_j], lags[top], "reference")
        var_q = np.maximum(s_qq - s_q * s_q / n, 0.0)
        var_r = np.maximum(s_rr - s_r * s_r / n, 0.0)
        flat = (var_q <= _FLAT * n) | (var_r <= _FLAT * n)
        r_lead = np.divide(xc - s_q * s_r / n, np.sqrt(var_q * var_r), out=np.zeros_like(xc), where=~flat)
        mean_r = np.clip(r_lead.mean(axis=1), -1.0, 1.0)  # (P, m): one lag for all leads
        k = np.argmax(mean_r, axis=1)
        sim[start : start + rows] = mean_r[np.arange(k.size), k]
        best[start : start + rows] = lags[top[np.arange(k.size), k]]
    return sim, best


def _max_lag(length: int, max_lag: int | None) -> int:
    lag = length // 2 if max_lag is None else int(max_lag)
    if not 0 <= lag < length:
        raise DataError(f"aligned similarity: max_lag must be in [0, {length - 1}], got {max_lag}")
    return lag


def aligned_similarity_pairs(query, reference, pairs, *, max_lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Aligned similarity for given pairs ``(i, j)`` of ``query[i]`` and ``reference[j]``.

    ``pairs``: integer array ``(P, 2)``. ``max_lag``: largest shift tried, in samples (default ``L // 2``:
    the records overlap by at least half their length). At lag ``tau`` the query sample ``t`` is compared
    with the reference sample ``t - tau`` (a query that is the reference delayed by ``tau`` samples matches at
    ``+tau``). The value is the exact mean per-lead overlap Pearson correlation at the best of the
    ``_REFINE`` lags where the lead-summed cross-correlation peaks: the maximum over all lags whenever one of
    those holds it, as it does for a shifted copy (1 at its shift) and did in every brute-force comparison of
    the tests. Returns ``(similarity (P,), best lag (P,))``.
    """
    q = check_signals(query, "query", ndim=3)
    r = check_signals(reference, "reference", ndim=3)
    if q.shape[1:] != r.shape[1:]:
        raise DataError(f"aligned similarity: query and reference shapes differ: {q.shape[1:]} vs {r.shape[1:]}")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs[:, 0].max() >= q.shape[0] or pairs[:, 1].max() >= r.shape[0]):
        raise DataError("aligned similarity: a pair index is out of range")
    return _similarity(q, r, pairs, _max_lag(q.shape[-1], max_lag))


def nearest_signature_distances(query, *references) -> list[np.ndarray]:
    """For each reference set, the distance ``(Nq,)`` from every query record to its nearest reference record in
    :func:`spectral_signatures` space (Euclidean, in [0, sqrt(2)]; a flat record is sqrt(2) from everything).

    The query's signatures are computed chunk by chunk (the query may be large, e.g. a training set); each
    reference set's once, whole (keep them small).
    """
    q = check_signals(query, "query", ndim=3)
    refs = [spectral_signatures(check_signals(r, f"reference {i}", ndim=3)) for i, r in enumerate(references)]
    best = [np.empty(q.shape[0]) for _ in refs]
    for start in range(0, q.shape[0], _CHUNK):
        sig = spectral_signatures(q[start : start + _CHUNK])
        for out, ref in zip(best, refs):
            out[start : start + _CHUNK] = (sig @ ref.T).max(axis=1)
    return [np.sqrt(np.maximum(2.0 - 2.0 * b, 0.0)) for b in best]


def _shortlist(q: np.ndarray, r: np.ndarray, n: int, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` references of largest signature dot product per query (descending): ``(dot, index)``, each
    ``(Nq, n)``; the reference's signatures are computed chunk by chunk and merged into a running top ``n``."""
    sig_q = spectral_signatures(q)
    best_dot = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
    best_idx = np.zeros((q.shape[0], 0), dtype=np.int64)
    for start in range(0, r.shape[0], _CHUNK):
        dot = sig_q @ spectral_signatures(r[start : start + _CHUNK]).T  # unit rows: larger dot = nearer
        idx = np.arange(start, start + dot.shape[1])
        if exclude_self:
            dot[idx[None, :] == np.arange(q.shape[0])[:, None]] = -np.inf
        all_dot = np.concatenate([best_dot, dot], axis=1)
        all_idx = np.concatenate([best_idx, np.broadcast_to(idx, dot.shape)], axis=1)
        keep = np.argsort(-all_dot, axis=1, kind="stable")[:, :n]
        best_dot, best_idx = np.take_along_axis(all_dot, keep, axis=1), np.take_along_axis(all_idx, keep, axis=1)
    return best_dot, best_idx


def aligned_neighbors(
    query, reference, *, k: int = 1, n_candidates: int = 10, max_lag: int | None = None, exclude_self: bool = False
) -> dict:
    """The ``k`` most alike references of every query record by aligned similarity (shortlist, then exact).

    ``n_candidates`` (>= ``k``) references per query are shortlisted by the Euclidean distance between
    :func:`spectral_signatures` (the reference's computed in chunks: memory does not grow with its size),
    then ranked by their exact aligned similarity (see :func:`aligned_similarity_pairs`). ``exclude_self``:
    the query set is the reference set (same rows) and a row must not match itself.

    Returns ``{"similarity" (Nq, k) descending, "distance" (Nq, k) = sqrt(2 (1 - similarity)) ascending,
    "index" (Nq, k) reference rows, "lag" (Nq, k) samples, "signature_distance" (Nq,) (to the nearest
    reference in signature space), "n_candidates"}``.
    """
    q = check_signals(query, "query", ndim=3)
    r = q if (exclude_self and reference is query) else check_signals(reference, "reference", ndim=3)
    if q.shape[1:] != r.shape[1:]:
        raise DataError(f"aligned neighbours: query and reference shapes differ: {q.shape[1:]} vs {r.shape[1:]}")
    if exclude_self and q.shape[0] != r.shape[0]:
        raise DataError("aligned neighbours: exclude_self needs the query and the reference to be the same set")
    available = r.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= available:
        raise DataError(f"aligned neighbours: k={k} requested but the reference has {available} candidate(s)")
    n_cand = int(min(max(n_candidates, k), available))
    dot, cand = _shortlist(q, r, n_cand, exclude_self)
    sig_dist = np.sqrt(np.maximum(2.0 - 2.0 * dot[:, 0].astype(np.float64), 0.0))
    pairs = np.stack([np.repeat(np.arange(q.shape[0]), n_cand), cand.ravel()], axis=1)
    sim, lag = _similarity(q, r, pairs, _max_lag(q.shape[-1], max_lag))
    sim, lag = sim.reshape(-1, n_cand), lag.reshape(-1, n_cand)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(sim, order, axis=1)
    return {
        "similarity": top,
        "distance": similarity_to_distance(top),
        "index": np.take_along_axis(cand, order, axis=1),
        "lag": np.take_along_axis(lag, order, axis=1),
        "signature_distance": sig_dist,
        "n_candidates": n_cand,
    }
