"""Euclidean privacy measures: does a generator copy, or leak membership of, its training records?

The building blocks used by :mod:`~midtecg.evaluation.privacy` (the audit behind the gate) and the classic
measures of method.md section 6, each callable on its own. Three sets: ``train`` (the generator's
training records), ``holdout`` (real records from the same distribution the generator never saw, e.g. the
test fold) and ``synth`` (generated records). Every function works in any vector space:

- **signal space**: ``(N, C, L)`` signals are flattened to ``C * L`` vectors, Euclidean distance in mV;
  ``center=True`` first removes each record's per-lead mean (baseline offsets). A shifted or rescaled copy
  is far from its source in this space: :mod:`~midtecg.evaluation.alignment` has the alignment-invariant
  distance the audit uses on signals;
- **embedding space**: ``(N, D)`` arrays (e.g. classifier embeddings computed by the caller) are used as
  given.

Nearest neighbours are exact, computed in row blocks with BLAS (``||a||^2 + ||b||^2 - 2 a.b`` in float64),
never with a Python loop over records.

Measures:

- **DCR** (distance to closest record): for each synthetic record the distance to its nearest training
  record, and the same for each holdout record; one-sided Mann-Whitney U test (alternative: synthetic DCRs
  are stochastically smaller). With many records the test detects differences too small to matter: a
  p-value is not a verdict (the gate in :mod:`~midtecg.evaluation.privacy_gate` uses effect sizes).
- **NNDR** (nearest-neighbour distance ratio ``d1 / d2`` to the training set, in [0, 1]): small when a
  record is much closer to one training record than to the next one (a copy of that record); compared with
  the holdout's NNDR the same way.
- **NNAA** (nearest-neighbour adversarial accuracy, Yale et al. 2020): with equal-size real ``T`` and
  synthetic ``S``, ``AA_TS = 1/2 [mean_i 1(d_TS(i) > d_TT(i)) + mean_j 1(d_ST(j) > d_SS(j))]`` where
  ``d_TS(i)`` is the distance from real ``i`` to its nearest synthetic record, ``d_TT(i)`` to its nearest
  *other* real record, and symmetrically for synthetic ``j``. 0.5 is ideal; below 0.5 the synthetic
  records sit closer to the real ones than real records do to each other (over-fitting / copying); above
  0.5 they are easy to tell apart (poor fidelity).
- **Membership inference** (ROC-AUC, members = training records, non-members = holdout records; 0.5 is
  chance, 1 is perfect leakage):
  (a) *distance attack*: score = minus the distance of the candidate to its nearest synthetic record;
  (b) *density attack*: score = Gaussian kernel density of the synthetic set at the candidate, with a
  bandwidth of the order of the nearest-neighbour spacing (see :func:`mia_density`);
  (c) *density-ratio attack* (DOMIAS-style, van Breugel et al. 2023): the synthetic density divided by a
  reference density of real data, with the reference = a random half of the holdout (the other half are
  the non-member candidates); it cancels regions that are merely dense in the real distribution.
  When members and non-members differ as populations (PTB-XL's training folds and fold 10 differ in
  amplitude), an attack scores above 0.5 without any synthetic data: compare with a baseline.
- **Near-copies** (:func:`near_copies`): synthetic records whose DCR is at most the ``percentile`` (default
  1st) percentile of the train-to-train nearest-neighbour distances, with the holdout's rate at the same
  threshold as the baseline.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from midtecg.data.errors import DataError

from .fidelity import check_signals

__all__ = [
    "as_features",
    "nearest_neighbors",
    "roc_auc",
    "dcr_test",
    "nndr",
    "nnaa",
    "mia_distance",
    "mia_density",
    "near_copies",
    "classic_measures",
]

_BLOCK_ELEMENTS = 8_000_000  # float64 distance values per block (64 MB)


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# ------------------------------------------------------------------------------------------- features
def as_features(x, *, center: bool = False, name: str = "records") -> np.ndarray:
    """``(N, C, L)`` signals -> ``(N, C*L)`` float64 (``center``: subtract each record's per-lead mean first);
    ``(N, D)`` embeddings -> float64 as given (``center`` is ignored for 2-D input)."""
    arr = check_signals(x, name, ndim=None)
    if arr.ndim == 3:
        out = arr.astype(np.float64)
        if center:
            out -= out.mean(axis=-1, keepdims=True)
        return out.reshape(out.shape[0], -1)
    return arr.astype(np.float64, copy=False)


def _features(sets: dict[str, object], center: bool) -> dict[str, np.ndarray]:
    out = {k: as_features(v, center=center, name=k) for k, v in sets.items()}
    dims = {k: v.shape[1] for k, v in out.items()}
    if len(set(dims.values())) > 1:
        raise DataError(f"records have different sizes after flattening: {dims}")
    return out


# ------------------------------------------------------------------------------------ nearest neighbours
def nearest_neighbors(query, reference, *, k: int = 1, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (Euclidean) of every query row among the reference rows.

    ``query`` ``(Nq, D)``, ``reference`` ``(Nr, D)`` (3-D signals are flattened). ``exclude_self``: the query
    set *is* the reference set (same rows, same order) and each row must not match itself (leave-one-out);
    other rows with identical values still count. Row blocks of at most ~8 M distances are computed at
    once with one matrix product each.

    Returns ``(distances (Nq, k) ascending, indices (Nq, k))``.
    """
    q = as_features(query, name="query")
    r = q if (exclude_self and reference is query) else as_features(reference, name="reference")
    if q.shape[1] != r.shape[1]:
        raise DataError(f"query and reference sizes differ: {q.shape[1]} vs {r.shape[1]}")
    if exclude_self and q.shape[0] != r.shape[0]:
        raise DataError("exclude_self needs the query and the reference to be the same set")
    available = r.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= available:
        raise DataError(f"k={k} neighbours requested but the reference has {available} candidate(s)")
    dist = np.empty((q.shape[0], k))
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    for start, stop, d2 in _d2_blocks(q, r):
        if exclude_self:
            i = np.arange(start, stop)
            d2[i - start, i] = np.inf
        if k < d2.shape[1]:
            part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(d2.shape[1]), d2.shape).copy()
        pd2 = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(pd2, axis=1, kind="stable")
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        dist[start:stop] = np.sqrt(np.take_along_axis(pd2, order, axis=1))
    return dist, idx


def _d2_blocks(q: np.ndarray, r: np.ndarray):
    """Yield ``(start, stop, squared distances (stop - start, Nr))`` over row blocks of ``q``."""
    nq = np.einsum("ij,ij->i", q, q)
    nr = np.einsum("ij,ij->i", r, r)
    rows = max(1, _BLOCK_ELEMENTS // r.shape[0])
    for start in range(0, q.shape[0], rows):
        stop = min(q.shape[0], start + rows)
        d2 = nq[start:stop, None] + nr[None, :] - 2.0 * (q[start:stop] @ r.T)
        np.maximum(d2, 0.0, out=d2)
        yield start, stop, d2


def _log_kde(query: np.ndarray, ref: np.ndarray, h: float) -> np.ndarray:
    """``log mean_j exp(-||x - r_j||^2 / (2 h^2))`` for every query row (Gaussian KDE up to a constant)."""
    out = np.empty(query.shape[0])
    for start, stop, d2 in _d2_blocks(query, ref):
        out[start:stop] = special.logsumexp(-d2 / (2.0 * h * h), axis=1) - math.log(ref.shape[0])
    return out


def _local_bandwidth(a: np.ndarray, gen: np.random.Generator, max_samples: int = 1000) -> float:
    """Kernel bandwidth that keeps a Gaussian KDE on ``a`` local, in any dimension.

    ``h^2 = (median pairwise d^2 - median nearest-neighbour d^2) / (2 ln n)``: at this width the ``n``
    records at the typical pairwise distance together weigh about as much as one record at the typical
    nearest-neighbour distance, so the estimate is dominated by the few nearest records. (In high dimension
    distances concentrate, and a bandwidth of the order of the nearest-neighbour spacing would give an
    almost flat estimate that cannot see anything.) Falls back to the median nearest-neighbour distance,
    then to 1, in degenerate cases.
    """
    nn = _train_nn_distances(a, max_samples, gen)
    sub = a if a.shape[0] <= max_samples else a[gen.choice(a.shape[0], max_samples, replace=False)]
    n2 = np.einsum("ij,ij->i", sub, sub)
    d2 = np.maximum(n2[:, None] + n2[None, :] - 2.0 * (sub @ sub.T), 0.0)
    typical = float(np.median(d2[np.triu_indices(sub.shape[0], k=1)]))
    nn2 = float(np.median(nn**2))
    h2 = (typical - nn2) / (2.0 * math.log(max(a.shape[0], 2)))
    if h2 > 0.0:
        return math.sqrt(h2)
    h = float(np.median(nn))
    return h if h > 0.0 else 1.0


def roc_auc(scores_positive, scores_negative) -> float:
    """ROC-AUC = P(score of a positive > score of a negative) + 1/2 P(tie), via ranks (Mann-Whitney)."""
    pos = np.asarray(scores_positive, dtype=np.float64).ravel()
    neg = np.asarray(scores_negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return math.nan
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise DataError("roc_auc: NaN scores")
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


# ----------------------------------------------------------------------------------------- measures
def _summary(d: np.ndarray) -> dict:
    return {
        "mean": float(d.mean()),
        "median": float(np.median(d)),
        "p05": float(np.percentile(d, 5)),
        "min": float(d.min()),
    }


def _mwu_less(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """One-sided Mann-Whitney U (a stochastically smaller than b): (U of a, p value, P(a < b))."""
    res = stats.mannwhitneyu(a, b, alternative="less")
    u = float(res.statistic)
    return u, float(res.pvalue), float(1.0 - u / (a.size * b.size))


def _dcr_from(d_synth: np.ndarray, d_holdout: np.ndarray) -> dict:
    u, p, prob = _mwu_less(d_synth, d_holdout)
    return {
        "dcr_synth": d_synth,
        "dcr_holdout": d_holdout,
        "dcr_synth_summary": _summary(d_synth),
        "dcr_holdout_summary": _summary(d_holdout),
        "dcr_ratio_median": float(np.median(d_synth) / max(np.median(d_holdout), 1e-300)),
        "dcr_mannwhitney_u": u,
        "dcr_p_value": p,
        "dcr_prob_synth_closer": prob,
    }


def dcr_test(train, holdout, synth, *, center: bool = False) -> dict:
    """Distances to the closest training record of synthetic and of holdout records, and the one-sided
    Mann-Whitney U test "synthetic DCRs are smaller than holdout DCRs".

    Returns ``{"dcr_synth" (N_s,), "dcr_holdout" (N_h,), "dcr_synth_summary", "dcr_holdout_summary"
    ({"mean", "median", "p05", "min"}), "dcr_ratio_median" (median synth / median holdout; < 1 = closer),
    "dcr_mannwhitney_u", "dcr_p_value", "dcr_prob_synth_closer" (P(DCR_synth < DCR_holdout), 0.5 ideal)}``.
    """
    f = _features({"train": train, "holdout": holdout, "synth": synth}, center)
    ds = nearest_neighbors(f["synth"], f["train"], k=1)[0][:, 0]
    dh = nearest_neighbors(f["holdout"], f["train"], k=1)[0][:, 0]
    return _dcr_from(ds, dh)


def _nndr_from(d_synth2: np.ndarray, d_holdout2: np.ndarray) -> dict:
    def ratio(d):
        with np.errstate(invalid="ignore", divide="ignore"):
            r = d[:, 0] / d[:, 1]
        return np.where(d[:, 1] > 0, r, 1.0)  # two exact duplicates at distance 0: not distinctive

    rs, rh = ratio(d_synth2), ratio(d_holdout2)
    _, p, prob = _mwu_less(rs, rh)
    return {
        "nndr_synth": rs,
        "nndr_holdout": rh,
        "nndr_synth_median": float(np.median(rs)),
        "nndr_holdout_median": float(np.median(rh)),
        "nndr_p_value": p,
        "nndr_prob_synth_smaller": prob,
    }


def nndr(train, holdout, synth, *, center: bool = False) -> dict:
    """Nearest-neighbour distance ratio ``d1 / d2`` to the training set, synthetic vs holdout.

    Returns ``{"nndr_synth" (N_s,), "nndr_holdout" (N_h,), "nndr_synth_median", "nndr_holdout_median",
    "nndr_p_value" (one-sided Mann-Whitney: synthetic ratios smaller), "nndr_prob_synth_smaller"}``.
    """
    f = _features({"train": train, "holdout": holdout, "synth": synth}, center)
    return _nndr_from(
        nearest_neighbors(f["synth"], f["train"], k=2)[0], nearest_neighbors(f["holdout"], f["train"], k=2)[0]
    )


def _aa(real: np.ndarray, synth: np.ndarray) -> dict:
    d_ts = nearest_neighbors(real, synth, k=1)[0][:, 0]
    d_tt = nearest_neighbors(real, real, k=1, exclude_self=True)[0][:, 0]
    d_st = nearest_neighbors(synth, real, k=1)[0][:, 0]
    d_ss = nearest_neighbors(synth, synth, k=1, exclude_self=True)[0][:, 0]
    a_real = float(np.mean(d_ts > d_tt))
    a_synth = float(np.mean(d_st > d_ss))
    return {"aa": 0.5 * (a_real + a_synth), "aa_real": a_real, "aa_synth": a_synth}


def nnaa(real, synth, *, center: bool = False, rng=None) -> dict:
    """Nearest-neighbour adversarial accuracy ``AA_TS`` of Yale et al. (0.5 ideal).

    The larger set is randomly subsampled to the size of the smaller one (the measure assumes equal
    sizes). Returns ``{"aa", "aa_real" (fraction of real records whose nearest synthetic record is farther
    than their nearest other real record), "aa_synth" (the synthetic counterpart), "n"}``.
    """
    f = _features({"real": real, "synth": synth}, center)
    gen = _rng(rng)
    n = min(f["real"].shape[0], f["synth"].shape[0])
    if n < 2:
        raise DataError("NNAA needs at least 2 records in each set")
    a, b = (
        x if x.shape[0] == n else x[np.sort(gen.choice(x.shape[0], n, replace=False))] for x in (f["real"], f["synth"])
    )
    return {**_aa(a, b), "n": int(n)}


def mia_distance(train, holdout, synth, *, center: bool = False) -> dict:
    """Membership-inference distance attack: score = -(distance to the nearest synthetic record).

    Returns ``{"auc", "n_members", "n_nonmembers"}`` (members = train, non-members = holdout).
    """
    f = _features({"train": train, "holdout": holdout, "synth": synth}, center)
    dm = nearest_neighbors(f["train"], f["synth"], k=1)[0][:, 0]
    dn = nearest_neighbors(f["holdout"], f["synth"], k=1)[0][:, 0]
    return {"auc": roc_auc(-dm, -dn), "n_members": int(dm.size), "n_nonmembers": int(dn.size)}


def mia_density(train, holdout, synth, *, center: bool = False, bandwidth: float | None = None, rng=None) -> dict:
    """Membership-inference density attacks: Gaussian kernel density of the synthetic set at the candidate.

    ``auc``: score ``log p_synth(x)`` with ``p_synth(x) = mean_j exp(-||x - s_j||^2 / (2 h^2))``; all holdout
    records are non-member candidates. ``auc_ratio``: score ``log p_synth(x) - log p_ref(x)`` with ``p_ref``
    the same estimate on a random half of the holdout (bandwidth from that half) and the other half as
    non-member candidates (NaN when the holdout has fewer than 6 records).

    Bandwidth ``h`` (unless given): chosen on the set the density is estimated on so that the estimate is
    *local*, i.e. dominated by the few nearest records (see ``_local_bandwidth``; in 12,000 dimensions a
    bandwidth of the order of the nearest-neighbour spacing is almost flat and sees nothing). The attack then
    sees generators that concentrate mass around training records (several noisy copies, mode collapse
    onto a record), which the nearest-neighbour distance attack only partly sees.

    Returns ``{"auc", "auc_ratio", "bandwidth", "bandwidth_reference", "n_members", "n_nonmembers",
    "n_reference"}``.
    """
    f = _features({"train": train, "holdout": holdout, "synth": synth}, center)
    return _mia_density_from(f["train"], f["holdout"], f["synth"], bandwidth, _rng(rng))


def _mia_density_from(tr, ho, sy, bandwidth, gen) -> dict:
    h = _local_bandwidth(sy, gen) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise DataError(f"density attack: bandwidth must be > 0, got {bandwidth}")
    lm = _log_kde(tr, sy, h)
    ln = _log_kde(ho, sy, h)
    out = {"auc": roc_auc(lm, ln), "bandwidth": h, "n_members": int(tr.shape[0]), "n_nonmembers": int(ho.shape[0])}
    if ho.shape[0] >= 6:
        perm = gen.permutation(ho.shape[0])
        ref_idx, cand_idx = perm[: ho.shape[0] // 2], perm[ho.shape[0] // 2 :]
        ref = ho[ref_idx]
        h_ref = _local_bandwidth(ref, gen) if bandwidth is None else h
        s_m = lm - _log_kde(tr, ref, h_ref)
        s_n = ln[cand_idx] - _log_kde(ho[cand_idx], ref, h_ref)
        out.update(auc_ratio=roc_auc(s_m, s_n), bandwidth_reference=h_ref, n_reference=int(ref_idx.size))
    else:
        out.update(auc_ratio=math.nan, bandwidth_reference=math.nan, n_reference=0)
    return out


def _train_nn_distances(tr: np.ndarray, max_queries: int | None, gen) -> np.ndarray:
    """Leave-one-out nearest-neighbour distances of (up to ``max_queries`` random) training records."""
    if max_queries is None or tr.shape[0] <= max_queries:
        return nearest_neighbors(tr, tr, k=1, exclude_self=True)[0][:, 0]
    sel = np.sort(gen.choice(tr.shape[0], max_queries, replace=False))
    d, i = nearest_neighbors(tr[sel], tr, k=2)
    # the query is in the reference: drop the match with itself (distance 0 at its own index)
    own = i[:, 0] == sel
    return np.where(own, d[:, 1], d[:, 0])


def _near_copies_from(d_synth, d_holdout, d_train_nn, percentile) -> dict:
    thr = float(np.percentile(d_train_nn, percentile))
    frac = float(np.mean(d_synth <= thr))
    frac_h = float(np.mean(d_holdout <= thr))
    return {
        "near_copy_threshold": thr,
        "near_copy_percentile": float(percentile),
        "near_copy_count": int((d_synth <= thr).sum()),
        "near_copy_fraction": frac,
        "near_copy_fraction_holdout": frac_h,
        "near_copy_excess": frac - frac_h,
        "train_nn_summary": _summary(d_train_nn),
    }


def near_copies(
    train,
    synth,
    holdout=None,
    *,
    percentile: float = 1.0,
    center: bool = False,
    max_queries: int | None = 2000,
    rng=None,
) -> dict:
    """Synthetic records with DCR at most the ``percentile``-th percentile of train-to-train NN distances.

    ``max_queries``: the train-to-train distances use at most that many random training records (each
    against the whole training set). Returns ``{"near_copy_threshold", "near_copy_percentile",
    "near_copy_count", "near_copy_fraction", "near_copy_fraction_holdout" (the rate for independent real
    records), "near_copy_excess" (synthetic minus holdout fraction; both NaN without holdout),
    "train_nn_summary"}``.
    """
    sets = {"train": train, "synth": synth} if holdout is None else {"train": train, "synth": synth, "holdout": holdout}
    f = _features(sets, center)
    gen = _rng(rng)
    ds = nearest_neighbors(f["synth"], f["train"], k=1)[0][:, 0]
    dh = nearest_neighbors(f["holdout"], f["train"], k=1)[0][:, 0] if holdout is not None else np.array([np.nan])
    out = _near_copies_from(ds, dh, _train_nn_distances(f["train"], max_queries, gen), percentile)
    if holdout is None:
        out["near_copy_fraction_holdout"] = out["near_copy_excess"] = math.nan
    return out


# ------------------------------------------------------------------------------------------ all of them
def classic_measures(
    train,
    holdout,
    synth,
    *,
    center: bool = False,
    density_bandwidth: float | None = None,
    near_copy_percentile: float = 1.0,
    max_train_queries: int | None = 2000,
    rng=None,
    keep_arrays: bool = True,
) -> dict:
    """Every measure of the module docstring in one Euclidean space (signals or embeddings), sharing the
    neighbour searches. Reported beside :func:`~midtecg.evaluation.privacy.privacy_audit`'s own measures
    (method.md section 6 lists them); the gate does not read them.

    Parameters
    ----------
    train, holdout, synth : ``(N, C, L)`` signals or ``(N, D)`` embeddings (same space for all three).
        Holdout must be disjoint from train (other patients) and drawn from the same distribution.
    center : remove each record's per-lead mean before flattening (signals only).
    density_bandwidth : kernel bandwidth of the density attacks (default: see :func:`mia_density`).
    near_copy_percentile : percentile of train-to-train NN distances used as the near-copy threshold.
    max_train_queries : training records used for the train-to-train distances (random subset).
    rng : seed or ``numpy.random.Generator`` (subsets for NNAA, the reference split, the subset above).
    keep_arrays : include the per-record arrays (``dcr_synth``, ``dcr_holdout``, ``nndr_synth``,
        ``nndr_holdout``); ``False`` keeps only scalars (small JSON).

    Returns
    -------
    flat dict: the keys of :func:`dcr_test` and :func:`nndr`; ``nnaa_train``, ``nnaa_holdout``,
    ``nnaa_privacy_loss``, ``nnaa_n``; ``mia_distance_auc``, ``mia_density_auc``, ``mia_density_ratio_auc``,
    ``mia_density_bandwidth``; the keys of :func:`near_copies`; ``n_train``, ``n_holdout``, ``n_synth``, ``dim``,
    ``space`` ("signal" or "embedding"), ``center``.
    """
    f = _features({"train": train, "holdout": holdout, "synth": synth}, center)
    tr, ho, sy = f["train"], f["holdout"], f["synth"]
    for name, a in f.items():
        if a.shape[0] < 3:
            raise DataError(f"classic privacy measures: {name} needs at least 3 records, got {a.shape[0]}")
    gen = _rng(rng)
    out: dict = {}
    d_sy_tr = nearest_neighbors(sy, tr, k=2)[0]
    d_ho_tr = nearest_neighbors(ho, tr, k=2)[0]
    out.update(_dcr_from(d_sy_tr[:, 0], d_ho_tr[:, 0]))
    out.update(_nndr_from(d_sy_tr, d_ho_tr))
    # NNAA with equal sizes: n = min(train, holdout, synth), the same synthetic subset for both
    n = min(tr.shape[0], ho.shape[0], sy.shape[0])
    pick = lambda a: a if a.shape[0] == n else a[np.sort(gen.choice(a.shape[0], n, replace=False))]  # noqa: E731
    sy_n = pick(sy)
    aa_tr = _aa(pick(tr), sy_n)
    aa_ho = _aa(pick(ho), sy_n)
    out.update(
        nnaa_train=aa_tr["aa"],
        nnaa_holdout=aa_ho["aa"],
        nnaa_privacy_loss=aa_ho["aa"] - aa_tr["aa"],
        nnaa_train_real=aa_tr["aa_real"],
        nnaa_train_synth=aa_tr["aa_synth"],
        nnaa_n=int(n),
    )
    # membership inference
    d_tr_sy = nearest_neighbors(tr, sy, k=1)[0][:, 0]
    d_ho_sy = nearest_neighbors(ho, sy, k=1)[0][:, 0]
    out["mia_distance_auc"] = roc_auc(-d_tr_sy, -d_ho_sy)
    dens = _mia_density_from(tr, ho, sy, density_bandwidth, gen)
    out.update(
        mia_density_auc=dens["auc"], mia_density_ratio_auc=dens["auc_ratio"], mia_density_bandwidth=dens["bandwidth"]
    )
    # near-copies
    out.update(
        _near_copies_from(
            d_sy_tr[:, 0], d_ho_tr[:, 0], _train_nn_distances(tr, max_train_queries, gen), near_copy_percentile
        )
    )
    out.update(
        n_train=int(tr.shape[0]),
        n_holdout=int(ho.shape[0]),
        n_synth=int(sy.shape[0]),
        dim=int(tr.shape[1]),
        space="signal" if np.ndim(train) == 3 else "embedding",
        center=bool(center),
    )
    if not keep_arrays:
        for key in ("dcr_synth", "dcr_holdout", "nndr_synth", "nndr_holdout"):
            out.pop(key, None)
    return out
