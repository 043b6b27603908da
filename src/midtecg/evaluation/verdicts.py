"""One verdict per axis of an evaluation, in words, from the numbers and their real-vs-real floors.

Every distance the suite reports comes with a **floor**: the same distance between two disjoint random halves
of the real records, repeated over ``n_splits`` (default 20) splits, reported as its mean and standard
deviation. It is what a perfect generator (one that draws new records from the same population) would score
with that many records, and its spread is how much the number moves by chance alone. The synthetic value is
measured at the floor's ``n`` (synthetic records subsampled to the size of a real half), so a small set does
not read as "better than real".

A check on one number, :func:`floor_check`, says

* ``close`` when the synthetic value is within ``K_SPREAD = 3`` standard deviations of the floor's mean, or
  within ``RELATIVE_MARGIN = 10 %`` of it when that is wider (a floor estimated with almost no spread must not
  turn round-off into a verdict), in the metric's bad direction;
* ``far`` when it is beyond that threshold;
* ``not_informative`` when the number or its floor could not be computed (too few records, every measurement
  failed on the real side, ...), or when the threshold lies beyond the worst value a bounded metric can take
  (a KS statistic above 1, a precision below 0): with so few records the check cannot fail.

Set-level distances (Frechet distance, KID, precision / recall, MMD, spectra, inter-lead correlations) come from
:mod:`midtecg.evaluation.floors`; per-record measures (rhythm, clinical intervals) are compared by their KS
statistic with unmeasured records counted beyond every value, so a set whose measurement mostly fails is far
(:func:`midtecg.evaluation.floors.compare_values`).

An axis combines its checks (:func:`combine`): ``far`` if any check is far, else ``close`` if at least one is
close, else ``not_informative``; ``not_measured`` when the axis did not run. The privacy axis takes the
privacy gate's verdict (``pass`` / ``fail`` / ``not_informative``; see :mod:`midtecg.evaluation.privacy_gate`).
Label adherence compares the synthetic macro AUC with the real test records' AUC minus ``K_SPREAD`` bootstrap
standard deviations (and at most ``RELATIVE_MARGIN`` below it, relatively, when that is looser); a real AUC
below ``MIN_INFORMATIVE_AUC`` means the classifier cannot tell the labels apart and the check is not
informative. Utility compares TSTR with TRTR the same way, with TRTR's bootstrap spread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "K_SPREAD",
    "RELATIVE_MARGIN",
    "MIN_INFORMATIVE_AUC",
    "AXES",
    "AXIS_TITLES",
    "floor_check",
    "combine",
    "verdicts",
    "headline",
]

K_SPREAD = 3.0
RELATIVE_MARGIN = 0.10
MIN_INFORMATIVE_AUC = 0.6
AXES = ("fidelity", "rhythm", "clinical", "labels", "privacy", "utility")
AXIS_TITLES = {
    "fidelity": "Do the synthetic ECGs, as a set, look like real ones?",
    "rhythm": "Is the rhythm as regular, and are the beats as consistent, as in real ECGs?",
    "clinical": "Are heart rate and the PR, QRS and QT intervals distributed as in real ECGs?",
    "labels": "Do the ECGs show the diagnoses they were generated for?",
    "privacy": "Are the ECGs free of copies of training patients?",
    "utility": "Can a classifier trained on them diagnose real ECGs?",
}


def _num(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3g}"


def floor_check(
    name: str,
    value,
    floor_mean,
    floor_std,
    *,
    higher_is_better: bool = False,
    bound: float | None = None,
    key: str | None = None,
) -> dict:
    """Compare one synthetic number with its real-vs-real floor (see the module docstring).

    ``bound``: the worst value the metric can take (1 for a KS statistic, 0 for precision), when it has one. A
    threshold at or beyond it cannot be crossed, so the check is not informative (too few records). ``key``: a
    short name for programs (default ``name``).
    """
    v, m, s = _num(value), _num(floor_mean), _num(floor_std)
    s = 0.0 if math.isnan(s) and not math.isnan(m) else s
    out: dict[str, Any] = {
        "key": key or name,
        "metric": name,
        "value": v,
        "floor_mean": m,
        "floor_std": s,
        "higher_is_better": higher_is_better,
    }
    if math.isnan(v) or math.isnan(m):
        missing = "its value" if math.isnan(v) else "its real-vs-real floor"
        return {
            **out,
            "threshold": math.nan,
            "verdict": "not_informative",
            "why": f"{name}: {missing} could not be computed",
        }
    margin = max(K_SPREAD * s, RELATIVE_MARGIN * abs(m))
    threshold = m - margin if higher_is_better else m + margin
    if bound is not None and (threshold <= bound if higher_is_better else threshold >= bound):
        return {
            **out,
            "threshold": threshold,
            "verdict": "not_informative",
            "why": f"{name}: the real-vs-real spread is too wide to judge (threshold {_fmt(threshold)} is beyond "
            f"the worst possible value {_fmt(bound)}; more records are needed)",
        }
    within = v >= threshold if higher_is_better else v <= threshold
    side = "below" if higher_is_better else "above"
    why = (
        f"{name} {_fmt(v)} is within the real-vs-real range (floor {_fmt(m)} +- {_fmt(s)}, threshold {_fmt(threshold)})"
        if within
        else f"{name} {_fmt(v)} is {side} the real-vs-real threshold {_fmt(threshold)} (floor {_fmt(m)} +- {_fmt(s)})"
    )
    return {**out, "threshold": threshold, "verdict": "close" if within else "far", "why": why}


def combine(checks: Iterable[dict], *, missing: str | None = None) -> dict:
    """An axis verdict from its checks (``missing``: why the axis was not measured, when it was not)."""
    checks = list(checks)
    if missing is not None:
        return {"verdict": "not_measured", "reason": missing, "checks": checks}
    far = [c for c in checks if c["verdict"] == "far"]
    close = [c for c in checks if c["verdict"] == "close"]
    if far:
        verdict, reason = "far", "; ".join(c["why"] for c in far)
    elif close:
        uninformative = [c["metric"] for c in checks if c["verdict"] == "not_informative"]
        verdict = "close"
        reason = "every measured number is within the real-vs-real range" + (
            f" (not informative: {', '.join(uninformative)})" if uninformative else ""
        )
    else:
        verdict = "not_informative"
        reason = "; ".join(c["why"] for c in checks) or "nothing could be measured"
    return {"verdict": verdict, "reason": reason, "checks": checks}


def _block_check(
    key: str, name: str, block, *, higher_is_better: bool = False, bound: float | None = None
) -> dict | None:
    """A check from a set-distance block: ``value_at_floor_n`` (or ``value``), ``floor_mean``, ``floor_std``."""
    if not isinstance(block, dict):
        return None
    value = block.get("value_at_floor_n", block.get("value"))
    return floor_check(
        name,
        value,
        block.get("floor_mean"),
        block.get("floor_std"),
        higher_is_better=higher_is_better,
        bound=bound,
        key=key,
    )


def _ks_check(key: str, name: str, block) -> dict | None:
    """A check from a per-record measure's comparison (:func:`midtecg.evaluation.floors.compare_values`): the
    KS distance (unmeasured records counted beyond every value) at the floor's n, against its floor."""
    if not isinstance(block, dict):
        return None
    return floor_check(
        name, block.get("ks_synth_mean"), block.get("ks_floor_mean"), block.get("ks_floor_std"), bound=1.0, key=key
    )


def _fidelity(result: dict) -> dict:
    dist = result.get("distributional")
    emb = result.get("embedding")
    if not isinstance(dist, dict) and not isinstance(emb, dict):
        return combine([], missing=_stage_missing(result, "distributional"))
    specs: tuple = ()
    if isinstance(emb, dict) and "frechet" in emb:
        specs = (
            ("frechet", "Frechet distance (classifier embeddings)", emb.get("frechet"), False, None),
            ("kid", "KID (classifier embeddings)", emb.get("kid"), False, None),
            ("precision", "k-NN precision (realism)", emb.get("precision"), True, 0.0),
            ("recall", "k-NN recall (coverage)", emb.get("recall"), True, 0.0),
        )
    if isinstance(dist, dict):
        specs += (
            ("mmd", "MMD (signals)", dist.get("mmd"), False, None),
            ("welch_psd", "Welch power-spectrum distance", dist.get("welch_psd"), False, None),
            ("correlation", "mean inter-lead correlation error", dist.get("correlation"), False, None),
        )
    checks = (_block_check(k, n, b, higher_is_better=h, bound=bound) for k, n, b, h, bound in specs)
    return combine(c for c in checks if c is not None)


RHYTHM_CHECKS = (
    ("rr_cv", "RR-interval variability (CV)"),
    ("beat_corr", "beat-to-beat shape consistency"),
    ("r_amp_cv", "R-amplitude variability (CV)"),
    ("p_wave_fraction", "P waves before the QRS"),
)
CLINICAL_CHECKS = (
    ("heart_rate", "heart rate"),
    ("pr_ms", "PR interval"),
    ("qrs_ms", "QRS duration"),
    ("qtc_ms", "QTc interval"),
)


def _rhythm(result: dict) -> dict:
    rhythm = result.get("rhythm")
    if not isinstance(rhythm, dict) or "comparison" not in rhythm:
        return combine([], missing=_stage_missing(result, "rhythm"))
    measures = ((rhythm["comparison"].get("groups") or {}).get("all") or {}).get("measures") or {}
    checks = [_ks_check(key, f"{label}: distance to real", measures.get(key)) for key, label in RHYTHM_CHECKS]
    return combine(c for c in checks if c is not None)


def _clinical(result: dict) -> dict:
    clin = result.get("clinical")
    if not isinstance(clin, dict) or "comparison" not in clin:
        return combine([], missing=_stage_missing(result, "clinical"))
    intervals = clin["comparison"].get("intervals") or {}
    checks = [_ks_check(key, f"{label}: distance to real", intervals.get(key)) for key, label in CLINICAL_CHECKS]
    return combine(c for c in checks if c is not None)


def _labels(result: dict) -> dict:
    lab = result.get("labels")
    if not isinstance(lab, dict) or "skipped" in lab:
        why = lab.get("skipped") if isinstance(lab, dict) else _stage_missing(result, "labels")
        return combine([], missing=why)
    checks = []
    for name in ("superdiagnostic", "all"):
        entry = lab.get(name)
        if not isinstance(entry, dict):
            continue
        title = f"macro AUC on the requested {name} labels"
        real = _num(entry.get("real_auc"))
        if not math.isnan(real) and real < MIN_INFORMATIVE_AUC:
            checks.append(
                {
                    "key": f"auc_{name}",
                    "metric": title,
                    "value": _num(entry.get("synth_auc")),
                    "floor_mean": real,
                    "floor_std": _num(entry.get("real_auc_std")),
                    "threshold": math.nan,
                    "verdict": "not_informative",
                    "why": f"{title}: the classifier reaches only {real:.2f} on real records",
                }
            )
            continue
        checks.append(
            floor_check(
                title, entry.get("synth_auc"), real, entry.get("real_auc_std"), higher_is_better=True, key=f"auc_{name}"
            )
        )
    return combine(checks)


def _privacy(result: dict) -> dict:
    priv = result.get("privacy")
    if not isinstance(priv, dict) or "gate" not in priv:
        why = priv.get("skipped") if isinstance(priv, dict) else _stage_missing(result, "privacy")
        return {"verdict": "not_measured", "reason": why}
    gate = priv["gate"]
    return {
        "verdict": gate.get("verdict", "not_informative"),
        "reason": gate.get("reason", ""),
        **{k: v for k, v in gate.items() if k not in ("verdict", "reason")},
    }


def _utility(result: dict) -> dict | None:
    util = result.get("utility")
    if util is None:
        return None
    if not isinstance(util, dict) or "skipped" in util:
        return combine([], missing=util.get("skipped") if isinstance(util, dict) else "the stage failed")
    checks = []
    for name, u in util.items():
        e = u.get("experiments", {}) if isinstance(u, dict) else {}
        trtr, tstr = e.get("TRTR"), e.get("TSTR")
        if isinstance(trtr, dict) and isinstance(tstr, dict):
            checks.append(
                floor_check(
                    f"TSTR macro AUC ({name}) against TRTR",
                    tstr.get("macro_auc"),
                    trtr.get("macro_auc"),
                    trtr.get("ci_std"),
                    higher_is_better=True,
                    key=f"tstr_{name}",
                )
            )
    return combine(checks)


def _stage_missing(result: dict, stage: str) -> str:
    errors = result.get("errors") or {}
    if stage in errors:
        return f"the {stage} stage failed: {str(errors[stage]).splitlines()[0]}"
    return "switched off or not computable for these inputs"


def verdicts(result: dict) -> dict:
    """The ``"verdicts"`` block of ``evaluation.json``: one entry per axis (``utility`` only when run)."""
    out = {
        "fidelity": _fidelity(result),
        "rhythm": _rhythm(result),
        "clinical": _clinical(result),
        "labels": _labels(result),
        "privacy": _privacy(result),
    }
    utility = _utility(result)
    if utility is not None:
        out["utility"] = utility
    return out


def headline(result: dict) -> dict:
    """The result's headline numbers, flat (``"summary"`` in ``evaluation.json``): counts, every verdict, and every
    deciding number with its floor, keyed ``<axis>.<metric>`` / ``<axis>.<metric>.floor``. Studies that compare
    many evaluations (``experiments/``) read these keys."""
    out: dict[str, Any] = {
        "n_real": (result.get("inputs") or {}).get("real", {}).get("n"),
        "n_synth": (result.get("inputs") or {}).get("synth", {}).get("n"),
        "n_pairs": (result.get("pairing") or {}).get("n_pairs", 0),
    }
    fid = result.get("fidelity")
    if isinstance(fid, dict):
        for key in ("snr_db", "rmse", "prd", "abs_r"):
            out[f"paired.{key}"] = (fid.get("summary") or {}).get(key)
            out[f"paired.{key}.floor"] = (fid.get("floor") or {}).get(key)
        out["paired.interlead_error_mean"] = (fid.get("interlead") or {}).get("mean_abs_error")
        out["paired.interlead_error_max"] = (fid.get("interlead") or {}).get("max_abs_error")
    for axis, v in (result.get("verdicts") or {}).items():
        out[f"{axis}.verdict"] = v.get("verdict")
        checks = v.get("checks") or []
        if isinstance(checks, dict):  # the privacy gate's checks: {name: {"value", "threshold", ...}}
            for name, check in checks.items():
                out[f"{axis}.{name}"] = check.get("value") if isinstance(check, dict) else check
            continue
        for check in checks:
            out[f"{axis}.{check['key']}"] = check.get("value")
            out[f"{axis}.{check['key']}.floor"] = check.get("floor_mean")
    hr = (result.get("clinical") or {}).get("heart_rate_error")
    if isinstance(hr, dict):
        out["clinical.heart_rate_mae_bpm"] = hr.get("mae")
    return out


def summary_value(result: dict, key: str) -> Any:
    """One number of an evaluation result: a key of its flat ``summary`` (see ``headline``), else a dotted
    path into the result (``"rhythm.comparison.groups.all"``); None when absent."""
    summary = result.get("summary") or {}
    if key in summary:
        return summary[key]
    node: Any = result
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
