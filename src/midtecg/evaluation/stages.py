"""The stages of an evaluation, one function each: ECG sets in, a JSON-ready block of the result out.

:func:`midtecg.evaluation.suite.evaluate` runs them in order and times them; each reads only what it is given,
so a stage can be rerun or tested alone. The metrics themselves live in the modules named in each stage.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np

from midtecg.data.labels import SCP_CODES, SUPERCLASSES, aggregate_labels, label_set_codes, vector_to_labels
from midtecg.evaluation.config import EvaluationConfig
from midtecg.evaluation.inputs import ECGSet

__all__ = [
    "EMBEDDING_LABELS",
    "fidelity_stage",
    "paired_floor",
    "distributional_stage",
    "embedding_classifier",
    "embed_sets",
    "label_adherence_stage",
    "rhythm_stage",
    "clinical_stage",
    "privacy_blocker",
    "privacy_stage",
    "utility_stage",
    "pick_examples",
    "single_blas_thread",
]

# The embedding classifier predicts the 71 SCP statements and the 5 diagnostic superclasses: the
# superclasses give label adherence (TRTS) on the benchmark's coarse labels from the same network.
EMBEDDING_LABELS: tuple[str, ...] = tuple(SCP_CODES) + tuple(f"superdiagnostic:{c}" for c in SUPERCLASSES)


def _superclasses(labels71: np.ndarray | None) -> np.ndarray | None:
    return None if labels71 is None else aggregate_labels(labels71, "superdiagnostic")


def single_blas_thread():
    """One BLAS thread for LAPACK-heavy steps. Once torch has run, its OpenMP workers keep spinning and a
    multi-threaded OpenBLAS ``eigh`` of a 512 x 512 covariance slows from 0.05 s to about 7 s on 2 busy cores
    (measured); one thread avoids the fight."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ------------------------------------------------------------------------------------------------ fidelity


def fidelity_stage(real: ECGSet, synth: ECGSet, pairing: dict, seed: int) -> dict:
    """Paired metrics (:mod:`~midtecg.evaluation.fidelity`) for the records that pair by ``ecg_id``, broken
    down by diagnostic superclass, with the real floor of :func:`paired_floor`."""
    from midtecg.evaluation.fidelity import breakdown, interlead_correlation_error, paired_fidelity

    ri, si = pairing["real_index"], pairing["synth_index"]
    rp, sp = real.signals[ri], synth.signals[si]
    out: dict[str, Any] = dict(paired_fidelity(rp, sp))
    inter = interlead_correlation_error(rp, sp)
    out["interlead"] = inter
    out["record_ids"] = real.ids()[ri]
    sup = _superclasses(real.labels71())
    if sup is not None:
        values = {
            **out["per_record"],
            "interlead_mean": inter["per_record_mean"],
            "interlead_max": inter["per_record_max"],
        }
        out["breakdown"] = breakdown(values, sup[ri], class_names=list(SUPERCLASSES))
        out["breakdown_by"] = "diagnostic superclass of the real record (a record counts in each of its classes)"
    out["floor"] = paired_floor(real, ri, seed)
    return out


def paired_floor(real: ECGSet, real_index: np.ndarray, seed: int) -> dict:
    """What the paired metrics give for *real* pairs: each real record against another real record with the
    same diagnostic superclasses (chosen at random). A generator cannot be expected to do better than a
    different patient with the same diagnosis, so paired SNR is read against this."""
    from midtecg.evaluation.fidelity import interlead_correlation_error, paired_fidelity

    sup = _superclasses(real.labels71())
    if sup is None:
        return {"skipped": "the real records carry no SCP labels"}
    keys = np.array(["".join("1" if v else "0" for v in row) for row in sup > 0.5])
    rng = np.random.default_rng(seed)
    a, b = [], []
    for i in np.asarray(real_index):
        same = np.flatnonzero(keys == keys[i])
        same = same[same != i]
        if same.size:
            a.append(i)
            b.append(int(rng.choice(same)))
    if len(a) < 2:
        return {"skipped": "fewer than 2 real records share their superclasses with another real record"}
    fid = paired_fidelity(real.signals[a], real.signals[b])
    inter = interlead_correlation_error(real.signals[a], real.signals[b])
    return {
        **{k: fid["summary"].get(k) for k in ("snr_db", "rmse", "prd", "abs_r")},
        "interlead_mean": inter["mean_abs_error"],
        "n_pairs": len(a),
        "what": "each real record against a random other real record with the same diagnostic superclasses",
    }


# ------------------------------------------------------------------------------------------------ distributions


def distributional_stage(real: ECGSet, synth: ECGSet, config: EvaluationConfig) -> dict:
    """Signal-space distances with real-vs-real floors (:func:`~midtecg.evaluation.set_distances.signal_distances`)."""
    from midtecg.evaluation.set_distances import signal_distances

    with single_blas_thread():
        return signal_distances(real.signals, synth.signals, fs=real.fs, n_splits=config.n_splits, seed=config.seed)


def embedding_classifier(train: ECGSet | None, classifier_dir, cfg, progress: bool, notes: list[str]):
    """The classifier whose features define the embedding space and which scores label adherence: trained on
    the real training records (or loaded from ``classifier_dir``). Returns ``(model or None, info)``."""
    from pathlib import Path

    from midtecg.evaluation.classifier import resolve_device
    from midtecg.evaluation.embeddings import embedding_model, load_classifier

    info: dict[str, Any] = {
        "config": cfg.to_dict(),
        "cache_dir": str(classifier_dir) if classifier_dir else None,
        "labels": list(EMBEDDING_LABELS),
    }
    labels = train.labels71() if train is not None else None
    cached = classifier_dir is not None and (Path(classifier_dir) / "classifier.json").is_file()
    if labels is not None:
        t0 = time.perf_counter()
        targets = np.concatenate([labels, _superclasses(labels)], axis=1)
        model = embedding_model(
            train.signals,
            targets,
            cache_dir=classifier_dir,
            config=cfg,
            progress=progress,
            label_names=list(EMBEDDING_LABELS),
        )
        info.update(
            source="trained on the real training records (71 SCP statements + 5 superclasses)",
            n_train=len(train),
            seconds=round(time.perf_counter() - t0, 3),
            cache_checked=cached,
        )
    elif cached:
        model = load_classifier(classifier_dir, device=resolve_device(cfg.device))
        if list(getattr(model, "label_names", None) or []) != list(EMBEDDING_LABELS):
            why = f"the classifier in {classifier_dir} predicts other labels than this midtecg's"
            notes.append(f"embedding metrics skipped: {why}")
            info["skipped"] = why
            return None, info
        info.update(source=f"loaded from {classifier_dir} (no training records given to check it against)")
        notes.append(f"embeddings: classifier loaded from {classifier_dir} without training data to verify it")
    else:
        why = "no training records" if train is None else "the training records carry no SCP labels"
        notes.append(f"embedding metrics skipped: {why} and no cached classifier")
        info["skipped"] = why
        return None, info
    info.update(
        model=model.net_config.to_dict(), embedding_dim=int(model.embedding_dim), history=getattr(model, "history", [])
    )
    return model, info


def _model_fingerprint(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def embed_sets(model, sets: dict[str, ECGSet], cache_dir=False, cached: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Embeddings of each named set; a set given twice (the same object) is embedded once. The sets named in
    ``cached`` (real records) are kept in the measurement cache ``cache_dir``, keyed by their content and the
    classifier's weights, so the next evaluation against them does not embed them again."""
    from midtecg.evaluation.embeddings import embed_signals
    from midtecg.evaluation.measure_cache import cached_measure

    version = _model_fingerprint(model) if cache_dir is not False and cached else ""
    done: dict[int, np.ndarray] = {}
    out = {}
    for name, s in sets.items():
        if id(s) not in done:
            if name in cached and cache_dir is not False:
                done[id(s)] = cached_measure(
                    "embedding",
                    s.signals,
                    s.fs,
                    lambda s=s: {"embedding": embed_signals(model, s.signals)},
                    cache_dir=cache_dir,
                    version=version,
                )["embedding"]
            else:
                done[id(s)] = embed_signals(model, s.signals)
        out[name] = done[id(s)]
    return out


def embedding_stage(emb: dict[str, np.ndarray], config: EvaluationConfig) -> dict:
    """Frechet distance, KID and k-NN precision / recall of the embeddings, with real-vs-real floors."""
    from midtecg.evaluation.set_distances import embedding_distances

    with single_blas_thread():
        return embedding_distances(emb["real"], emb["synth"], n_splits=config.n_splits, seed=config.seed)


def label_adherence_stage(model, real: ECGSet, synth: ECGSet, seed: int) -> dict:
    """Label adherence (TRTS: train on real, test on synthetic): the real-trained classifier scores the
    synthetic ECGs against the labels they were generated for, beside the same classifier on the real test
    records against their true labels. Macro ROC-AUC per label set, with the real side's bootstrap spread."""
    from midtecg.evaluation.auc import bootstrap_auc_ci, macro_auc
    from midtecg.evaluation.classifier import predict

    y_real, y_synth = real.labels71(), synth.labels71()
    if y_synth is None:
        return {"skipped": "the synthetic ECGs carry no requested labels"}
    if y_real is None:
        return {"skipped": "the real records carry no SCP labels"}
    p_real, p_synth = predict(model, real.signals), predict(model, synth.signals)
    out: dict[str, Any] = {
        "what": "macro ROC-AUC of the real-trained classifier on the synthetic ECGs against the "
        "labels they were asked for (TRTS), and on the real test records"
    }
    n71 = len(SCP_CODES)
    for name, cols, yr, ys in (
        ("superdiagnostic", slice(n71, None), _superclasses(y_real), _superclasses(y_synth)),
        ("all", slice(0, n71), y_real, y_synth),
    ):
        names = list(label_set_codes(name)) if name != "all" else list(SCP_CODES)
        real_auc = bootstrap_auc_ci(yr, p_real[:, cols], n_boot=200, seed=seed, class_names=names)
        synth_auc, dropped = macro_auc(ys, p_synth[:, cols], class_names=names, return_dropped=True)
        out[name] = {
            "synth_auc": synth_auc,
            "real_auc": real_auc["auc"],
            "real_auc_std": real_auc["std"],
            "real_ci_low": real_auc["ci_low"],
            "real_ci_high": real_auc["ci_high"],
            "ratio": synth_auc / real_auc["auc"] if real_auc["auc"] and real_auc["auc"] > 0 else math.nan,
            "n_real": len(real),
            "n_synth": len(synth),
            "classes_without_both_synth": dropped,
        }
    return out


# ------------------------------------------------------------------------------------------------ rhythm, clinical


def _rhythm_groups(s: ECGSet) -> np.ndarray | None:
    from midtecg.evaluation.rhythm import rhythm_groups

    labels = s.labels71()
    return None if labels is None else rhythm_groups(labels)


def rhythm_stage(real: ECGSet, synth: ECGSet, config: EvaluationConfig, caches: tuple) -> dict:
    """RR-interval regularity, beat-to-beat morphology and P waves (:mod:`~midtecg.evaluation.rhythm`), by
    rhythm label, against real-vs-real floors. ``caches``: the measurement cache folders of the real and the
    synthetic side (see :func:`midtecg.evaluation.measure_cache.cached_measure`)."""
    from midtecg.evaluation.rhythm import compare_rhythm, rhythm_measures

    mr = rhythm_measures(real.signals, real.fs, n_jobs=config.n_jobs, cache_dir=caches[0])
    ms = rhythm_measures(synth.signals, synth.fs, n_jobs=config.n_jobs, cache_dir=caches[1])
    return {
        "comparison": compare_rhythm(
            mr,
            ms,
            real_groups=_rhythm_groups(real),
            synth_groups=_rhythm_groups(synth),
            n_splits=config.n_splits,
            seed=config.seed,
        ),
        "per_record": {"real": mr, "synth": ms},
    }


def clinical_stage(real: ECGSet, synth: ECGSet, pairing: dict, config: EvaluationConfig, caches: tuple) -> dict:
    """Delineated intervals (:mod:`~midtecg.evaluation.clinical`): distributions with floors, failure rates,
    heart rate against the requested one, paired differences and comparisons per age bin and sex. ``caches``:
    as for :func:`rhythm_stage` (the rhythm measures and the intervals come from one cached pass)."""
    from midtecg.evaluation.clinical import (
        INTERVALS,
        age_bins,
        compare_by_group,
        compare_intervals,
        delineate,
        heart_rate_error,
        interval_stats,
        interval_stats_by_group,
        sex_groups,
    )

    fs = real.fs
    dr = delineate(real.signals, fs, n_jobs=config.n_jobs, cache_dir=caches[0])
    ds = delineate(synth.signals, fs, n_jobs=config.n_jobs, cache_dir=caches[1])
    out: dict = {
        "lead": dr["lead"],
        "resolution_ms": dr["resolution_ms"],
        "note": dr["note"],
        "comparison": compare_intervals(dr, ds, n_splits=config.n_splits, seed=config.seed),
        "real_stats": interval_stats(dr),
        "synth_stats": interval_stats(ds),
        "per_record": {
            "real": {**{k: dr[k] for k in INTERVALS}, "failed": dr["failed"]},
            "synth": {**{k: ds[k] for k in INTERVALS}, "failed": ds["failed"]},
        },
        "errors_real": sorted({e for e in dr["errors"] if e})[:20],
        "errors_synth": sorted({e for e in ds["errors"] if e})[:20],
    }
    requested = synth.column("heart_rate")
    if requested is not None:
        out["heart_rate_error"] = heart_rate_error(requested, ds)
        out["heart_rate_error"]["what"] = "measured heart rate of the synthetic ECGs minus the requested one (bpm)"
    reference = real.column("heart_rate")
    if reference is not None:
        out["heart_rate_error_real"] = heart_rate_error(reference, dr)
        out["heart_rate_error_real"]["what"] = (
            "measured heart rate of the real ECGs minus the cache's heart_rate: "
            "the measurement floor of heart_rate_error"
        )
    ri, si = pairing["real_index"], pairing["synth_index"]
    if len(ri):
        paired = {}
        for k in INTERVALS:
            d = ds[k][si] - dr[k][ri]
            d = d[np.isfinite(d)]
            paired[k] = {
                "mae": float(np.abs(d).mean()) if d.size else math.nan,
                "bias": float(d.mean()) if d.size else math.nan,
                "median_abs": float(np.median(np.abs(d))) if d.size else math.nan,
                "n": int(d.size),
            }
        out["paired_differences"] = paired
    groups: dict = {}
    for name, fn in (("age", age_bins), ("sex", sex_groups)):
        g_real, g_synth = real.column(name), synth.column(name)
        source = "synthetic conditions"
        if g_synth is None and len(ri) and g_real is not None:
            g_synth = np.full(len(synth), np.nan)
            g_synth[si] = g_real[ri]
            source = "paired real records"
        if g_real is None or g_synth is None:
            continue
        groups[name] = {
            "synth_groups_from": source,
            "comparison": compare_by_group(dr, fn(g_real), ds, fn(g_synth)),
            "real_stats": interval_stats_by_group(dr, fn(g_real)),
            "synth_stats": interval_stats_by_group(ds, fn(g_synth)),
        }
    out["groups"] = groups
    return out


# ------------------------------------------------------------------------------------------------ privacy, utility


def privacy_blocker(train: ECGSet | None, holdout: ECGSet, synth: ECGSet) -> str:
    """Why the privacy audit cannot run ('' when it can)."""
    if train is None:
        return "no training records (pass train=...)"
    for name, s in (("train", train), ("holdout", holdout), ("synth", synth)):
        if len(s) < 3:
            return f"{name} has {len(s)} record(s); the audit needs at least 3"
    a, b = train.ids(), holdout.ids()
    if a is not None and b is not None:
        overlap = np.intersect1d(a, b)
        if overlap.size:
            return (
                f"the holdout shares {overlap.size} ecg_id(s) with the training set (e.g. {int(overlap[0])}); "
                "pass holdout=... with records the generator never saw"
            )
    return ""


def privacy_stage(
    train: ECGSet, holdout: ECGSet, synth: ECGSet, emb: dict[str, np.ndarray], seed: int, notes: list[str]
) -> dict:
    """The privacy audit (:mod:`~midtecg.evaluation.privacy`) in signal space (alignment-invariant) and, when the
    embeddings were computed, in embedding space, and the gate over both. The gate decides on the audit's own
    numbers, not on the fidelity verdict: "no copies found" stays true of a generator that is far on other axes,
    and sets far from every real record are recognised by their distances (not informative)."""
    from midtecg.evaluation.privacy import privacy_audit
    from midtecg.evaluation.privacy_gate import privacy_gate

    embeddings = {k: emb[k] for k in ("train", "holdout", "synth")} if "train" in emb else None
    if embeddings is None:
        notes.append("privacy: no embeddings, audited in signal space only")
    with single_blas_thread():
        audit = privacy_audit(train.signals, holdout.signals, synth.signals, embeddings=embeddings, rng=seed)
    return {**audit, "gate": privacy_gate(audit)}


def utility_stage(train: ECGSet, synth: ECGSet, real: ECGSet, config: EvaluationConfig) -> dict:
    """TRTR, TSTR, real + synthetic and low-data curves (:func:`~midtecg.evaluation.utility.run_utility`)."""
    from midtecg.evaluation.utility import run_utility

    yt, ys, yr = train.labels71(), synth.labels71(), real.labels71()
    return {
        name: run_utility(
            train.signals,
            aggregate_labels(yt, name),
            synth.signals,
            aggregate_labels(ys, name),
            real.signals,
            aggregate_labels(yr, name),
            fractions=config.utility_fractions,
            config=config.utility_classifier,
            label_set_name=name,
            class_names=list(label_set_codes(name)),
            progress=config.progress,
        )
        for name in config.utility_label_sets
    }


def pick_examples(real: ECGSet, synth: ECGSet, pairing: dict, fid: dict, n: int, seed: int) -> list[dict]:
    """A few paired examples for the report: one per diagnostic superclass present where possible."""
    ri, si = pairing["real_index"], pairing["synth_index"]
    if n <= 0 or len(ri) == 0:
        return []
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    y = real.labels71()
    sup = _superclasses(y)
    if sup is not None:
        for j in range(len(SUPERCLASSES)):
            members = [k for k in np.flatnonzero(sup[ri, j] > 0.5) if k not in chosen]
            if members and len(chosen) < n:
                chosen.append(int(rng.choice(members)))
    chosen += [int(k) for k in rng.permutation(len(ri)) if k not in chosen][: max(0, n - len(chosen))]
    ids = real.ids()
    out = []
    for k in chosen:
        labels = ",".join(vector_to_labels(y[ri[k]])[:6]) if y is not None else ""
        snr, r = fid["per_record"]["snr_db"][k], fid["per_record"]["abs_r"][k]
        out.append(
            {
                "real": real.signals[ri[k]],
                "synth": synth.signals[si[k]],
                "fs": real.fs,
                "title": f"ecg_id {ids[ri[k]]} {('[' + labels + ']') if labels else ''}  SNR {snr:.1f} dB, |r| {r:.2f}",
            }
        )
    return out
