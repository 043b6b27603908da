"""The paper's claims judged from the runs' evaluations: the metrics compared, means with 95 % t intervals
over seeds, and one verdict per claim (``judge_claims``). ``run.py`` trains, generates and evaluates; this
module decides.
"""

from __future__ import annotations

import math

import numpy as np
import study
from scipy import stats

__all__ = ["METRICS", "PRIVACY", "utility_auc", "mean_ci", "badness", "judge_claims", "metric_label", "plus_minus"]

#: (key in the evaluation's flat "summary" or a path into evaluation.json, label, better: "lower" | "higher" | "half")
METRICS = [
    ("paired.interlead_error_mean", "inter-lead corr. error, mean", "lower"),
    ("paired.interlead_error_max", "inter-lead corr. error, max", "lower"),
    ("paired.snr_db", "SNR (dB)", "higher"),
    ("paired.rmse", "RMSE (mV)", "lower"),
    ("paired.abs_r", "|r|", "higher"),
    ("fidelity.frechet", "Frechet distance", "lower"),
    ("fidelity.mmd", "MMD^2", "lower"),
    ("clinical.heart_rate", "heart rate KS", "lower"),
    ("clinical.qrs_ms", "QRS KS", "lower"),
    ("clinical.qtc_ms", "QTc KS", "lower"),
    ("clinical.comparison.failure_rate_synth", "delineation failures", "lower"),
    ("privacy.signal.classic.mia_distance_auc", "MIA AUC, distance", "half"),
    ("privacy.signal.classic.mia_density_auc", "MIA AUC, density", "half"),
    ("privacy.signal.classic.nnaa_train", "NNAA (train)", "half"),
    ("privacy.signal.classic.nnaa_privacy_loss", "NNAA privacy loss", "lower"),
    ("privacy.signal.dcr.ratio_median", "DCR ratio (synth/holdout)", "higher"),
    ("privacy.embedding.classic.mia_distance_auc", "MIA AUC, distance (embedding)", "half"),
]
PRIVACY = [key for key, _, _ in METRICS if key.startswith("privacy.")]


def utility_auc(result: dict, label_set: str, experiment: str) -> float:
    try:
        return float(result["utility"][label_set]["experiments"][experiment]["macro_auc"])
    except (KeyError, TypeError, ValueError):
        return math.nan


def mean_ci(values) -> dict:
    """Mean and the half-width of a 95 % t interval over seeds (NaN with fewer than two values)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"mean": math.nan, "ci": math.nan, "n": 0}
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return {"mean": float(v.mean()), "ci": float(half), "n": len(v)}


def badness(value: float, better: str) -> float:
    """A number where smaller is better (distance from 0.5 for the attack AUCs and NNAA)."""
    return {"lower": value, "higher": -value, "half": abs(value - 0.5)}[better]


def _excludes_zero(stat: dict) -> int:
    """+1 when the interval lies above zero, -1 below, 0 when it straddles zero or is unknown."""
    if not np.isfinite(stat["ci"]):
        return 0
    return 1 if stat["mean"] - stat["ci"] > 0 else -1 if stat["mean"] + stat["ci"] < 0 else 0


def judge_claims(results: dict, experiment: dict) -> list[dict]:
    """The paper's four claims against the per-seed results ``results[model][seed] -> evaluation dict``."""
    seeds = sorted(set.intersection(*(set(r) for r in results.values()))) if results else []

    def per(model: str, f) -> list[float]:
        return [f(results[model][s]) for s in seeds] if model in results else []

    claims = []

    # 1. inter-lead correlation error, MIDT against SSSD, paired by seed
    base = np.array(per("sssd-ecg", lambda r: study.metric(r, "paired.interlead_error_mean")))
    midt = np.array(per("midt-ecg", lambda r: study.metric(r, "paired.interlead_error_mean")))
    reduction = mean_ci(100 * (1 - midt / base)) if len(base) and len(midt) else mean_ci([])
    sign = _excludes_zero(reduction)
    claims.append(
        {
            "claim": "MIDT lowers the inter-lead correlation error by about 74 % (vs SSSD-ECG)",
            "measured": f"{plus_minus(reduction, 1)} % lower (mean per-record error {plus_minus(mean_ci(midt), 4)} vs {plus_minus(mean_ci(base), 4)})",
            "verdict": ("holds in direction" if sign > 0 else "does not hold" if sign < 0 else "not resolved")
            + (
                ""
                if sign <= 0
                else (
                    ", magnitude as in the paper"
                    if reduction["mean"] - reduction["ci"] <= 74 <= reduction["mean"] + reduction["ci"]
                    else ", smaller than the paper's 74 %"
                )
            ),
            "reduction_percent": reduction,
        }
    )

    # 2. privacy: relative improvement of each metric (positive = MIDT more private)
    rows, signs = {}, []
    for key in PRIVACY:
        better = next(b for k, _, b in METRICS if k == key)
        b = np.array(per("sssd-ecg", lambda r, key=key, better=better: badness(study.metric(r, key), better)))
        m = np.array(per("midt-ecg", lambda r, key=key, better=better: badness(study.metric(r, key), better)))
        gain = mean_ci(100 * (b - m) / np.maximum(np.abs(b), 1e-12)) if len(b) and len(m) else mean_ci([])
        rows[key] = gain
        signs.append(_excludes_zero(gain))
    n_better, n_worse = signs.count(1), signs.count(-1)
    claims.append(
        {
            "claim": "MIDT's privacy metrics are 4-8 % better (vs SSSD-ECG)",
            "measured": "; ".join(f"{metric_label(k)} {plus_minus(v, 1)} %" for k, v in rows.items()),
            "verdict": (
                "holds"
                if n_better > len(signs) / 2 and not n_worse
                else "does not hold"
                if n_worse > len(signs) / 2 and not n_better
                else "not resolved"
            )
            + f" ({n_better} better, {n_worse} worse, {len(signs) - n_better - n_worse} within seed noise)",
            "improvement_percent": rows,
        }
    )

    # 3. demographic conditioning raises the paired SNR (vs labels only)
    labels_snr = np.array(per("midt-ecg", lambda r: study.metric(r, "paired.snr_db")))
    gains = {}
    for model in ("midt-ecg-age", "midt-ecg-sex"):
        snr = np.array(per(model, lambda r: study.metric(r, "paired.snr_db")))
        gains[model] = mean_ci(snr - labels_snr) if len(snr) and len(labels_snr) else mean_ci([])
    verdicts = [_excludes_zero(g) for g in gains.values()]
    claims.append(
        {
            "claim": "demographic conditioning raises the paired SNR (vs MIDT with labels only)",
            "measured": "; ".join(f"{m}: {plus_minus(g, 3)} dB" for m, g in gains.items()),
            "verdict": "holds"
            if all(v > 0 for v in verdicts)
            else "holds for one of the two"
            if any(v > 0 for v in verdicts)
            else "does not hold"
            if all(v < 0 for v in verdicts)
            else "not resolved",
            "snr_gain_db": gains,
        }
    )

    # 4. low data: real subset + synthetic about as good as all real data
    label_set = experiment["evaluate"]["utility_label_sets"][0]
    fraction = min(f for f in experiment["evaluate"]["utility_fractions"] if f < 1)
    tolerance = 0.02
    rows = {}
    for model in results:
        trtr = np.array(per(model, lambda r: utility_auc(r, label_set, "TRTR")))
        small = np.array(per(model, lambda r: utility_auc(r, label_set, f"real_{fraction:g}")))
        mixed = np.array(per(model, lambda r: utility_auc(r, label_set, f"real_{fraction:g}+synth")))
        rows[model] = {"gap_to_all_real": mean_ci(mixed - trtr), "gain_over_subset": mean_ci(mixed - small)}
    holds = [m for m, r in rows.items() if r["gap_to_all_real"]["mean"] >= -tolerance]
    fails = [m for m, r in rows.items() if r["gap_to_all_real"]["mean"] + r["gap_to_all_real"]["ci"] < -tolerance]
    claims.append(
        {
            "claim": f"with {fraction:.0%} of the real training data plus synthetic ECGs, a classifier does about as "
            f"well as with all real data ({label_set}, macro AUC; 'about' = within {tolerance})",
            "measured": "; ".join(
                f"{m}: {plus_minus(r['gap_to_all_real'], 3)} vs all real, {plus_minus(r['gain_over_subset'], 3)} vs "
                f"the {fraction:.0%} subset alone"
                for m, r in rows.items()
            ),
            "verdict": (
                "holds"
                if len(holds) == len(rows)
                else "does not hold"
                if len(fails) == len(rows)
                else f"holds for {', '.join(holds) or 'none'}, fails for {', '.join(fails) or 'none'}, "
                "the rest within seed noise"
            ),
            "auc_differences": rows,
        }
    )
    return claims


def metric_label(key: str) -> str:
    return next(label for k, label, _ in METRICS if k == key)


def plus_minus(stat: dict, digits: int) -> str:
    """``mean ± ci`` with ``digits`` decimals (the mean alone without an interval; n/a without a mean)."""
    if not np.isfinite(stat["mean"]):
        return "n/a"
    if not np.isfinite(stat["ci"]):
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['ci']:.{digits}f}"
