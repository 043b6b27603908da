"""Privacy audit: does a generator copy its training ECGs, or leak who was in its training set?

Three sets: ``train`` (the generator's training records), ``holdout`` (real records from the same source that
the generator never saw: other patients) and ``synth`` (generated records). The holdout is the yardstick
throughout: every distance of a synthetic record to the training set is read against the same distance of
unseen real records, so the gate needs no absolute threshold in millivolts or embedding units.

**Spaces.** :func:`privacy_audit` always works in signal space and, when the caller passes classifier
embeddings, also in embedding space; the gate fails when either space shows copying.

- *Signal space* uses the alignment-invariant distance of :mod:`~midtecg.evaluation.alignment`: each lead
  standardised, best common time shift (circular or with padded edges, up to half the record), so that a
  copy that is shifted, amplified (x 0.8, x 1.25, any gain per lead), offset or slightly noisy still sits
  at distance ~0 from its source. Unrelated records sit near ``sqrt(2)`` = 1.41; on PTB-XL, unseen real
  records have distances 0.64-1.30 to their nearest of 1,924 training records (fold 10 vs folds 1-8). Its
  shortlist measure, the spectral-signature distance (magnitude spectra of the standardised leads and of
  their differences), serves the far-from-data check and the membership attack, where every candidate is
  compared with every synthetic record.
- *Embedding space*: Euclidean distance between the ``(N, D)`` embeddings as given.

**Measures per space** (all vectorised; :func:`privacy_audit` documents the keys):

- *DCR*: distance of each synthetic and each holdout record to its nearest training record.
- *Near-copies*: synthetic records closer to a training record than ``near_copy_factor`` (0.5) times the
  ``near_copy_quantile`` (5th) percentile of the holdout's DCRs: closer than half the distance at which the
  closest 5 % of unseen real records sit. The holdout's own rate at that threshold (~0 by construction) is
  subtracted: ``excess``. On PTB-XL signal space this threshold is 0.39 (aligned correlation 0.92); copies
  with 0.02 mV of added noise sit at 0.06-0.33, with 0.05 mV at 0.16-0.60 (62 % of them below 0.39).
- *Far from the data*: the fraction of synthetic records farther from every training record than the
  holdout's ``far_quantile`` (99th) percentile. A generator of noise, sines or flat lines puts nearly all
  its records there (white noise in the aligned distance, sines and flat lines in the spectral one); unseen
  real records put ~1 % there.
- *Membership inference*, as an advantage over a baseline that uses no synthetic data: members =
  training records, non-members = holdout records, score = minus the distance to the nearest synthetic
  record; ``baseline_auc`` is the same attack with a *reference set of real training records* (a random
  subset, left out of the member candidates) in place of the synthetic set: what an attacker gets from a
  generator that reproduces the training distribution without memorising anyone. Population differences
  between the training folds and the holdout (PTB-XL's folds 1-8 and fold 10 differ in amplitude: an
  amplitude-only attack scores 0.552 with no synthetic data) raise both AUCs alike and cancel in
  ``advantage = auc - baseline_auc``. (A patient with records among both the reference and the member
  candidates raises the baseline a little, which errs towards passing; PTB-XL has ~1.15 records per
  patient.) In signal space the distance is the spectral-signature one; exact copies of 10 % of the
  training records move the AUC only by ~0.05 (the near-copy check is the copy detector), while a
  generator whose every output hugs one training record without being a near-copy moves it by ~0.5.

**The gate** (:func:`~midtecg.evaluation.privacy_gate.privacy_gate`) turns one audit into ``pass`` / ``fail`` /
``not_informative``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from midtecg.data.errors import DataError

from .alignment import aligned_neighbors, nearest_signature_distances
from .fidelity import check_signals
from .privacy_measures import classic_measures, nearest_neighbors, roc_auc

__all__ = ["privacy_audit"]

_MAX_EXAMPLES = 20


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _summary(d: np.ndarray) -> dict:
    return {
        "min": float(d.min()),
        "p05": float(np.percentile(d, 5)),
        "median": float(np.median(d)),
        "mean": float(d.mean()),
        "p95": float(np.percentile(d, 95)),
        "max": float(d.max()),
    }


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of a ROC-AUC (Hanley & McNeil 1982)."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1.0 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


# ------------------------------------------------------------------------------------------ one space
def _near_copies(d_synth, d_holdout, factor: float, quantile: float, match=None, lag=None) -> dict:
    anchor = float(np.percentile(d_holdout, quantile))
    defined = anchor > 1e-9  # else the holdout holds copies of training records: no yardstick
    threshold = factor * anchor if defined else math.nan
    hit = d_synth < threshold if defined else np.zeros(d_synth.size, dtype=bool)
    hit_h = d_holdout < threshold if defined else np.zeros(d_holdout.size, dtype=bool)
    order = np.flatnonzero(hit)[np.argsort(d_synth[hit], kind="stable")][:_MAX_EXAMPLES]
    examples = [
        {
            "synth_index": int(i),
            "distance": float(d_synth[i]),
            **({"train_index": int(match[i])} if match is not None else {}),
            **({"lag": int(lag[i])} if lag is not None else {}),
        }
        for i in order
    ]
    return {
        "threshold": threshold,
        "factor": float(factor),
        "quantile": float(quantile),
        "holdout_quantile_value": anchor,
        "count": int(hit.sum()),
        "fraction": float(hit.mean()),
        "count_holdout": int(hit_h.sum()),
        "fraction_holdout": float(hit_h.mean()),
        "excess": float(hit.mean() - hit_h.mean()) if defined else math.nan,
        "examples": examples,
    }


def _far(d_synth, d_holdout, quantile: float) -> dict:
    limit = float(np.percentile(d_holdout, quantile))
    return {
        "quantile": float(quantile),
        "holdout_quantile_value": limit,
        "fraction_beyond": float(np.mean(d_synth > limit)),
        "median_synth": float(np.median(d_synth)),
        "median_holdout": float(np.median(d_holdout)),
    }


def _mia(member_to_synth, nonmember_to_synth, member_to_ref, nonmember_to_ref, n_reference: int) -> dict:
    """Distance attack (score = minus the distance to the nearest record of a set) with the synthetic set and
    with the real reference set, members vs non-members; the arguments are those nearest distances."""
    n_m, n_n = member_to_synth.size, nonmember_to_synth.size
    if n_m < 2 or n_n < 2 or n_reference < 1:
        return {
            "auc": math.nan,
            "baseline_auc": math.nan,
            "advantage": math.nan,
            "advantage_se": math.nan,
            "n_members": int(n_m),
            "n_nonmembers": int(n_n),
            "n_reference": int(n_reference),
        }
    auc = roc_auc(-member_to_synth, -nonmember_to_synth)
    base = roc_auc(-member_to_ref, -nonmember_to_ref)
    se = math.hypot(_auc_se(auc, n_m, n_n), _auc_se(base, n_m, n_n))
    return {
        "auc": auc,
        "baseline_auc": base,
        "advantage": auc - base,
        "advantage_se": se,
        "n_members": int(n_m),
        "n_nonmembers": int(n_n),
        "n_reference": int(n_reference),
    }


def _space(
    space: str,
    distance: str,
    d_synth,
    d_holdout,
    far: dict,
    mia: dict,
    settings: dict,
    *,
    match=None,
    lag=None,
    keep_arrays: bool,
) -> dict:
    out = {
        "space": space,
        "distance": distance,
        "dcr": {
            "synth": _summary(d_synth),
            "holdout": _summary(d_holdout),
            "ratio_median": float(np.median(d_synth) / max(np.median(d_holdout), 1e-300)),
            "prob_synth_closer": roc_auc(-d_synth, -d_holdout),
        },
        "near_copy": _near_copies(
            d_synth, d_holdout, settings["near_copy_factor"], settings["near_copy_quantile"], match, lag
        ),
        "far": {name: _far(ds, dh, settings["far_quantile"]) for name, (ds, dh) in far.items()},
        "mia": mia,
    }
    if keep_arrays:
        out.update(dcr_synth=d_synth, dcr_holdout=d_holdout)
        if match is not None:
            out["match_synth"] = match
    return out


# ------------------------------------------------------------------------------------------ the audit
def privacy_audit(
    train,
    holdout,
    synth,
    *,
    embeddings: Mapping[str, np.ndarray] | None = None,
    n_candidates: int = 6,
    max_lag: int | None = None,
    near_copy_factor: float = 0.5,
    near_copy_quantile: float = 5.0,
    far_quantile: float = 99.0,
    classic: bool = True,
    rng=0,
    keep_arrays: bool = True,
) -> dict:
    """Near-copies, distance from the data and membership inference, in signal (and embedding) space.

    Parameters
    ----------
    train, holdout, synth : ``(N, C, L)`` signals (same leads and length; at least 3 records each). The
        holdout must be real records of *other patients* than the training records.
    embeddings : optional ``{"train", "holdout", "synth"}`` -> ``(N, D)`` embeddings of the same records (e.g.
        :func:`~midtecg.evaluation.embeddings.embed_signals` of a classifier trained on real data); adds the
        ``"embedding"`` space.
    n_candidates : shortlist size per query of the aligned distance (see
        :func:`~midtecg.evaluation.alignment.aligned_neighbors`).
    max_lag : largest shift tried, in samples (default half the record).
    near_copy_factor, near_copy_quantile : near-copy threshold = factor x that percentile of the holdout DCRs.
    far_quantile : percentile of the holdout DCRs beyond which a synthetic record counts as far.
    classic : add, per space, the Euclidean measures of method.md section 6
        (:func:`~midtecg.evaluation.privacy_measures.classic_measures`: DCR test, NNDR, NNAA, distance and
        density attacks, near-copies by train-to-train distances) under ``"classic"``; reported, never
        deciding (raw-signal Euclidean distances see neither shifts nor rescaling).
    rng : seed or Generator (the real reference subset of the membership attack).
    keep_arrays : include the per-record arrays (``dcr_synth``, ``dcr_holdout``, ``match_synth``).

    Returns
    -------
    ``{"signal": space, "embedding": space (only with embeddings), "n_train", "n_holdout", "n_synth",
    "settings"}``; a space is ``{"space", "distance" (what is measured), "dcr": {"synth", "holdout" (summaries:
    min, p05, median, mean, p95, max), "ratio_median", "prob_synth_closer" (P(synthetic DCR < holdout DCR),
    0.5 for an independent set; diagnostic only)}, "near_copy": {"threshold", "factor", "quantile",
    "holdout_quantile_value", "count", "fraction", "count_holdout", "fraction_holdout", "excess",
    "examples": [{"synth_index", "train_index", "distance", "lag" (signal space, samples)}]}, "far": {distance
    name: {"quantile", "holdout_quantile_value", "fraction_beyond", "median_synth", "median_holdout"}},
    "mia": {"auc", "baseline_auc", "advantage", "advantage_se", "n_members", "n_nonmembers", "n_reference"},
    "classic" (with ``classic``)}``.
    ``threshold`` is NaN when the holdout's percentile is 0 (the holdout holds copies of training records).
    """
    sets = {
        "train": check_signals(train, "train"),
        "holdout": check_signals(holdout, "holdout"),
        "synth": check_signals(synth, "synth"),
    }
    shapes = {k: v.shape[1:] for k, v in sets.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"privacy audit: train, holdout and synth need the same leads and length: {shapes}")
    for name, a in sets.items():
        if a.shape[0] < 3:
            raise DataError(f"privacy audit: {name} needs at least 3 records, got {a.shape[0]}")
    n = {k: v.shape[0] for k, v in sets.items()}
    settings = {
        "near_copy_factor": float(near_copy_factor),
        "near_copy_quantile": float(near_copy_quantile),
        "far_quantile": float(far_quantile),
        "n_candidates": int(n_candidates),
        "max_lag": int(shapes["train"][-1] // 2 if max_lag is None else max_lag),
    }
    gen = _rng(rng)
    # membership attack: a real reference subset of the training set (as many records as the synthetic set,
    # at most half the training set); member candidates: other training records, as many as the larger of
    # the holdout and the synthetic set (more add little precision to the AUC and cost time)
    n_ref = min(n["synth"], n["train"] // 2)
    perm = gen.permutation(n["train"])
    reference = np.sort(perm[:n_ref])
    members = np.sort(perm[n_ref : n_ref + max(n["holdout"], n["synth"])])

    # ---- signal space: aligned distance (near-copies, far), spectral signatures (far, membership)
    k_s = n["synth"]
    nb = aligned_neighbors(
        np.concatenate([sets["synth"], sets["holdout"]]), sets["train"], k=1, n_candidates=n_candidates, max_lag=max_lag
    )
    d_al, match, lag, d_sig = nb["distance"][:, 0], nb["index"][:, 0], nb["lag"][:, 0], nb["signature_distance"]
    m_synth, m_ref = nearest_signature_distances(sets["train"][members], sets["synth"], sets["train"][reference])
    h_synth, h_ref = nearest_signature_distances(sets["holdout"], sets["synth"], sets["train"][reference])
    mia = _mia(m_synth, h_synth, m_ref, h_ref, reference.size)
    out = {
        "signal": _space(
            "signal",
            "aligned distance sqrt(2 (1 - r)): r = mean per-lead Pearson correlation at the best common shift",
            d_al[:k_s],
            d_al[k_s:],
            {"aligned": (d_al[:k_s], d_al[k_s:]), "spectral": (d_sig[:k_s], d_sig[k_s:])},
            mia,
            settings,
            match=match[:k_s],
            lag=lag[:k_s],
            keep_arrays=keep_arrays,
        )
    }
    out["signal"]["mia"]["attack"] = "distance to the nearest record in spectral-signature space"

    # ---- embedding space: Euclidean
    if embeddings is not None:
        missing = [k for k in ("train", "holdout", "synth") if k not in embeddings]
        if missing:
            raise DataError(f"privacy audit: embeddings lack {missing} (need train, holdout and synth)")
        emb = {k: check_signals(embeddings[k], f"embeddings[{k!r}]", ndim=2).astype(np.float64) for k in sets}
        for k in sets:
            if emb[k].shape[0] != n[k]:
                raise DataError(f"privacy audit: embeddings[{k!r}] has {emb[k].shape[0]} rows for {n[k]} {k} records")
        if len({e.shape[1] for e in emb.values()}) > 1:
            raise DataError(f"privacy audit: embedding sizes differ: { {k: e.shape[1] for k, e in emb.items()} }")

        def nearest(a, b):
            return nearest_neighbors(a, b, k=1)[0][:, 0]

        d_s, i_s = (a[:, 0] for a in nearest_neighbors(emb["synth"], emb["train"], k=1))
        d_h = nearest(emb["holdout"], emb["train"])
        ref = emb["train"][reference]
        mia = _mia(
            nearest(emb["train"][members], emb["synth"]),
            nearest(emb["holdout"], emb["synth"]),
            nearest(emb["train"][members], ref),
            nearest(emb["holdout"], ref),
            reference.size,
        )
        out["embedding"] = _space(
            "embedding",
            "Euclidean distance between embeddings",
            d_s,
            d_h,
            {"euclidean": (d_s, d_h)},
            mia,
            settings,
            match=i_s,
            keep_arrays=keep_arrays,
        )
        out["embedding"]["mia"]["attack"] = "distance to the nearest record in embedding space"
    if classic:
        for space, (tr, ho, sy) in {
            "signal": (sets["train"], sets["holdout"], sets["synth"]),
            **({"embedding": (emb["train"], emb["holdout"], emb["synth"])} if embeddings is not None else {}),
        }.items():
            out[space]["classic"] = classic_measures(tr, ho, sy, rng=gen, keep_arrays=False)
    out.update(n_train=n["train"], n_holdout=n["holdout"], n_synth=n["synth"], settings=settings)
    return out
