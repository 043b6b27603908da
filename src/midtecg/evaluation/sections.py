"""The HTML page of an evaluation: a verdict per axis in words first, then one section per axis with the
deciding numbers and their real-vs-real floors, then the details (tables and figures).

:func:`build_report` turns an evaluation result (the dict :func:`~midtecg.evaluation.suite.evaluate` returns, or
its saved JSON) into a :class:`~midtecg.evaluation.report.Report`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from midtecg.data.leads import WFDB_LEADS
from midtecg.evaluation.report import Report
from midtecg.evaluation.verdicts import AXIS_TITLES, K_SPREAD, RELATIVE_MARGIN

__all__ = ["build_report", "add_timings", "VERDICT_WORDS", "FLOOR_TEXT"]

VERDICT_WORDS = {
    "close": "CLOSE to real ECGs",
    "far": "FAR from real ECGs",
    "not_informative": "CANNOT TELL from these data",
    "not_measured": "not measured",
    "pass": "PASS: no sign of copied training records",
    "fail": "FAIL: synthetic ECGs are too close to training records",
}
FLOOR_TEXT = (
    "How to read the verdicts. Each number is compared with its real-vs-real floor: the same number computed "
    "between two random halves of the real ECGs, repeated over many splits. The floor is what a perfect "
    "generator (one producing new ECGs from the same population) would score with that many records; its "
    "spread (+-) is how much the number moves by chance alone. A synthetic set is called close when its "
    f"number lies within {K_SPREAD:g} spreads of the floor (or {100 * RELATIVE_MARGIN:g} % of it, whichever is "
    "wider), far when it lies beyond, and the suite says it cannot tell when the floor could not be measured. "
    "A synthetic value slightly better than the floor is chance, not a better-than-real generator."
)
INTERVAL_TITLES = {
    "heart_rate": "heart rate (bpm)",
    "pr_ms": "PR (ms)",
    "qrs_ms": "QRS (ms)",
    "qt_ms": "QT (ms)",
    "qtc_ms": "QTc (ms)",
}


def _finite(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _get(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _fmt(v, digits: int = 4) -> str:
    if isinstance(v, str):
        return v
    v = _finite(v)
    return "n/a" if math.isnan(v) else f"{v:.{digits}g}"


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _verdict_summary(report: Report, result: dict) -> None:
    """The page's first table: one row per axis, its question, the verdict in words and why."""
    verdicts = result.get("verdicts") or {}
    measured = {a: v.get("verdict") for a, v in verdicts.items() if isinstance(v, dict)}
    far = [a for a, v in measured.items() if v in ("far", "fail")]
    good = [a for a, v in measured.items() if v in ("close", "pass")]
    if far:
        overall = f"Not yet faithful: far from real ECGs on {', '.join(far)}."
    elif good:
        overall = f"Close to real ECGs on every axis that could be judged ({', '.join(good)})."
    else:
        overall = "Nothing could be judged: see the notes below."
    report.add_summary("Overall", overall)
    for axis, v in verdicts.items():
        if not isinstance(v, dict):
            continue
        word = VERDICT_WORDS.get(v.get("verdict"), str(v.get("verdict")))
        report.add_summary(f"{axis}: {AXIS_TITLES.get(axis, '')}", f"{word}. {v.get('reason', '')}")
    real, synth = _get(result, "inputs", "real") or {}, _get(result, "inputs", "synth") or {}
    pairing = result.get("pairing") or {}
    report.add_summary(
        "records",
        f"{synth.get('n')} synthetic against {real.get('n')} real; {pairing.get('n_pairs', 0)} pairs by ecg_id"
        if pairing.get("method")
        else f"{synth.get('n')} synthetic against {real.get('n')} real; unpaired",
    )


def _checks_table(report: Report, result: dict, axis: str) -> None:
    """The deciding numbers of one axis: value, floor mean +- spread, threshold, verdict."""
    v = _get(result, "verdicts", axis) or {}
    checks = v.get("checks") or []
    if not checks:
        if v.get("reason"):
            report.add_note(
                f"{VERDICT_WORDS.get(v.get('verdict'), v.get('verdict'))}: {v['reason']}",
                level="warning" if v.get("verdict") in ("far", "fail") else "info",
            )
        return
    rows = [
        {
            "measure": c.get("metric"),
            "synthetic": c.get("value"),
            "real floor": c.get("floor_mean"),
            "floor spread (sd)": c.get("floor_std"),
            "threshold": c.get("threshold"),
            "verdict": VERDICT_WORDS.get(c.get("verdict"), c.get("verdict")),
        }
        for c in checks
    ]
    report.add_table(
        f"Verdict: {VERDICT_WORDS.get(v.get('verdict'), v.get('verdict'))}",
        _frame(rows),
        caption="Synthetic values at the floor's number of records; see 'How to read the verdicts'.",
    )


def _fidelity_section(report: Report, result: dict, examples: list[dict] | None) -> None:
    from midtecg.plotting import plot_ecg_comparison

    fid = result.get("fidelity")
    report.add_section(
        "Fidelity (paired)",
        "Only for synthetic ECGs that pair with a real record by ecg_id. Each synthetic ECG against the real ECG whose conditions it was "
        "generated from: SNR, RMSE, PRD and |Pearson r| per lead, averaged over records; inter-lead "
        "correlation error per record (mean and max of |C_real - C_synth| over the 66 lead pairs).",
    )
    if not isinstance(fid, dict) or "summary" not in fid:
        report.add_note(
            "Paired metrics were not computed: "
            + (_get(result, "pairing", "reason") or "switched off or failed")
            + ".",
            level="warning",
        )
        return
    floor = fid.get("floor") or {}
    rows = [
        {
            "set": "synthetic vs its real partner",
            **{k: fid["summary"].get(k) for k in ("snr_db", "rmse", "prd", "abs_r")},
            "interlead_mean": _get(fid, "interlead", "mean_abs_error"),
            "n": fid.get("n_records"),
        }
    ]
    if "skipped" not in floor:
        rows.append(
            {
                "set": "real floor: another real record, same superclasses",
                **{k: floor.get(k) for k in ("snr_db", "rmse", "prd", "abs_r", "interlead_mean")},
                "n": floor.get("n_pairs"),
            }
        )
    report.add_table(
        "Summary",
        _frame(rows),
        caption="SNR in dB (exact copies capped at "
        f"{_fmt(fid.get('snr_cap_db'))} dB), RMSE in mV, PRD in %. A generator is not expected to match "
        "its partner more closely than another patient with the same diagnosis does (the floor row)"
        + (f"; {floor['skipped']}" if "skipped" in floor else "")
        + ".",
    )
    per_lead = fid.get("per_lead") or {}
    if per_lead:
        leads = list(next(iter(per_lead.values())).keys())
        report.add_table(
            "Per lead", _frame([{"lead": lead, **{m: per_lead[m].get(lead) for m in per_lead}} for lead in leads])
        )
    bd = fid.get("breakdown")
    if isinstance(bd, dict) and bd:
        rows = []
        for group, entry in bd.items():
            row = {"superclass": group, "n": entry.get("n")}
            for metric in ("snr_db", "rmse", "prd", "abs_r", "interlead_mean", "interlead_max"):
                row[metric] = _get(entry, metric, "mean")
            rows.append(row)
        report.add_table("By diagnostic superclass", _frame(rows), caption=fid.get("breakdown_by"))
    if examples:
        report.add_text(
            "Examples: real (black) and synthetic (red) 12-lead ECGs, paired by conditions; one per "
            "diagnostic superclass where the test set has it."
        )
        for ex in examples:
            fig = plot_ecg_comparison(ex["real"], ex["synth"], fs=ex["fs"], leads=WFDB_LEADS, title=ex["title"])
            report.add_figure(None, fig, dpi=72)
    elif examples is None:
        report.add_note(
            "Example 12-lead comparison plots need the raw signals; this page was rebuilt from "
            "evaluation.json, so they are omitted."
        )


def _distributional_section(report: Report, result: dict) -> None:
    report.add_section(
        "Fidelity (distributions)",
        "Unpaired comparisons of the two sets: in the embedding "
        "space of an ECG classifier trained on real records (Frechet distance, KID, k-NN precision "
        "= share of synthetic ECGs that look real, recall = share of real variety the synthetic set "
        "covers) and on the signals themselves (MMD, power spectra, inter-lead correlations).",
    )
    _checks_table(report, result, "fidelity")
    clf = _get(result, "embedding", "classifier")
    if isinstance(clf, dict) and "skipped" in clf:
        report.add_note(f"No embedding metrics: {clf['skipped']}.", level="warning")
    for note in (_get(result, "embedding", "note"), _get(result, "distributional", "note")):
        if note:
            report.add_note(str(note))
    p = (result.get("distributional") or {}).get("welch_psd")
    if isinstance(p, dict) and isinstance(p.get("per_lead"), dict):
        report.add_table(
            "Welch power-spectrum distance per lead (dB, whole sets)",
            _frame([{"lead": lead, "distance": v} for lead, v in p["per_lead"].items()]),
        )


def _clinical_section(report: Report, result: dict) -> None:
    from midtecg.plotting import interval_histograms

    clin = result.get("clinical")
    report.add_section(
        "Clinical coherence",
        "Both sets delineated the same way: heart rate and the PR, QRS, QT "
        "and QTc intervals (per-record values), and how often delineation fails.",
    )
    _checks_table(report, result, "clinical")
    if not isinstance(clin, dict) or "comparison" not in clin:
        return
    if clin.get("note"):
        report.add_note(clin["note"])
    cmp = clin["comparison"]
    rows = []
    for k, entry in (cmp.get("intervals") or {}).items():
        rows.append(
            {
                "interval": INTERVAL_TITLES.get(k, k),
                "real mean": entry.get("real_mean"),
                "synth mean": entry.get("synth_mean"),
                "real sd": entry.get("real_std"),
                "synth sd": entry.get("synth_std"),
                "Wasserstein": entry.get("wasserstein"),
                "KS": entry.get("ks_statistic"),
                "KS p": entry.get("ks_pvalue"),
                "real missing": entry.get("real_missing_rate"),
                "synth missing": entry.get("synth_missing_rate"),
            }
        )
    report.add_table(
        "Intervals",
        _frame(rows),
        caption=f"Delineation failure rate: real "
        f"{_fmt(cmp.get('failure_rate_real'))}, synthetic {_fmt(cmp.get('failure_rate_synth'))}.",
    )
    hr_rows = []
    for key, what in (
        ("heart_rate_error", "synthetic: measured - requested"),
        ("heart_rate_error_real", "real: measured - cache heart_rate (measurement floor)"),
    ):
        if isinstance(clin.get(key), dict):
            e = clin[key]
            hr_rows.append(
                {
                    "comparison": what,
                    "MAE": e.get("mae"),
                    "bias": e.get("bias"),
                    "RMSE": e.get("rmse"),
                    "within 5 bpm": e.get("within_5bpm"),
                    "n": e.get("n"),
                    "missing": e.get("n_missing"),
                }
            )
    if hr_rows:
        report.add_table("Heart rate vs conditions (bpm)", _frame(hr_rows))
    if isinstance(clin.get("paired_differences"), dict):
        report.add_table(
            "Paired differences (synthetic - real partner)",
            _frame([{"interval": INTERVAL_TITLES.get(k, k), **v} for k, v in clin["paired_differences"].items()]),
        )
    for name, g in (clin.get("groups") or {}).items():
        rows = []
        for group, c in (g.get("comparison") or {}).items():
            row = {
                name: group,
                "n real": c.get("n_real"),
                "n synth": c.get("n_synth"),
                "failure real": c.get("failure_rate_real"),
                "failure synth": c.get("failure_rate_synth"),
            }
            for k in ("heart_rate", "qrs_ms", "qt_ms", "qtc_ms"):
                row[f"{k} real"] = _get(c, "intervals", k, "real_mean")
                row[f"{k} synth"] = _get(c, "intervals", k, "synth_mean")
            rows.append(row)
        if rows:
            report.add_table(
                f"By {name}",
                _frame(rows),
                caption=f"Means per group; synthetic groups from the {g.get('synth_groups_from')}.",
            )
    per = clin.get("per_record") or {}
    if "real" in per and "synth" in per:
        real = {INTERVAL_TITLES[k]: np.array(per["real"][k], dtype=float) for k in INTERVAL_TITLES if k in per["real"]}
        synth = {
            INTERVAL_TITLES[k]: np.array(per["synth"][k], dtype=float) for k in INTERVAL_TITLES if k in per["synth"]
        }
        if real:
            report.add_figure(
                "Interval distributions",
                interval_histograms(real, synth, units=""),
                caption="Per-record values; dashed lines are medians.",
            )


def _privacy_section(report: Report, result: dict) -> None:
    from midtecg.plotting import privacy_distance_histogram

    priv = result.get("privacy")
    report.add_section(
        "Privacy",
        "Does the generator copy, or leak membership of, its training records? For every "
        "synthetic ECG, the distance to its closest training record (aligned: any time shift and "
        "amplitude scaling of a copy is still found), against the same for unseen real records; "
        "near-copies; and a membership-inference attack, reported as its advantage over the same "
        "attack without synthetic data. Records far from every real ECG (noise, flat lines) cannot "
        "be judged: the gate then says it cannot tell, never pass.",
    )
    v = _get(result, "verdicts", "privacy") or {}
    report.add_note(
        f"Privacy gate: {VERDICT_WORDS.get(v.get('verdict'), v.get('verdict'))}. {v.get('reason', '')}",
        level="warning" if v.get("verdict") != "pass" else "info",
    )
    if not isinstance(priv, dict) or "gate" not in priv:
        return
    checks = priv["gate"].get("checks") or {}
    if checks:
        report.add_table(
            "Gate checks",
            _frame(
                [
                    {"check": name, **{k: c.get(k) for k in ("value", "op", "threshold", "passed")}}
                    for name, c in checks.items()
                    if isinstance(c, dict)
                ]
            ),
        )
    spaces = [s for s in ("signal", "embedding") if isinstance(priv.get(s), dict)]
    rows = []
    for label, keys in (
        ("median DCR, synthetic", ("dcr", "synth", "median")),
        ("median DCR, unseen real", ("dcr", "holdout", "median")),
        ("DCR ratio (synthetic / unseen real)", ("dcr", "ratio_median")),
        ("near-copies", ("near_copy", "count")),
        ("near-copy share", ("near_copy", "fraction")),
        ("near-copy share of unseen real", ("near_copy", "fraction_holdout")),
        ("membership AUC", ("mia", "auc")),
        ("no-synthetic baseline AUC", ("mia", "baseline_auc")),
        ("membership advantage", ("mia", "advantage")),
    ):
        rows.append({"measure": label, **{s: _get(priv[s], *keys) for s in spaces}})
    report.add_table("Audit", _frame(rows), caption="; ".join(f"{s}: {priv[s].get('distance')}" for s in spaces))
    for s in spaces:
        a = priv[s]
        if a.get("dcr_synth") is not None and a.get("dcr_holdout") is not None:
            threshold = _finite(_get(a, "near_copy", "threshold"))
            fig = privacy_distance_histogram(
                np.array(a["dcr_synth"], dtype=float),
                np.array(a["dcr_holdout"], dtype=float),
                title=f"Distance to closest training record ({s} space)",
                vlines={"near-copy threshold": threshold} if math.isfinite(threshold) else None,
            )
            report.add_figure(
                None,
                fig,
                caption="Synthetic records piling up left of the unseen real records' "
                "distances suggest memorised training records.",
            )


def _utility_section(report: Report, result: dict) -> None:
    from midtecg.plotting import errorbar_lines

    util = result.get("utility")
    if util is None:
        return
    report.add_section(
        "Utility",
        "Classifiers trained on real (TRTR), synthetic (TSTR), real + synthetic and small "
        "real subsets with and without the synthetic records, all tested on the real test records: "
        "macro ROC-AUC with bootstrap 95 % intervals.",
    )
    if not isinstance(util, dict) or "skipped" in util:
        report.add_note(
            f"Utility was not run: {util.get('skipped') if isinstance(util, dict) else 'failed'}.", level="warning"
        )
        return
    for name, u in util.items():
        if not isinstance(u, dict) or "experiments" not in u:
            continue
        rows = [
            {
                "experiment": exp,
                "train": e.get("train"),
                "n_real": e.get("n_real"),
                "n_synth": e.get("n_synth"),
                "macro AUC": e.get("macro_auc"),
                "CI low": e.get("ci_low"),
                "CI high": e.get("ci_high"),
                "seconds": e.get("train_seconds"),
            }
            for exp, e in u["experiments"].items()
        ]
        report.add_table(f"Label set {name} ({u.get('n_classes')} classes, device {u.get('device')})", _frame(rows))
        fractions = [f for f in (u.get("fractions") or []) if f is not None]
        series = {}
        for label, suffix in (("real only", ""), ("real + synthetic", "+synth")):
            xs, ys, errs = [], [], []
            for f in fractions:
                e = _get(u, "experiments", f"real_{f:g}{suffix}") or (
                    _get(u, "experiments", "TRTR" + suffix) if f == 1.0 else None
                )
                if isinstance(e, dict) and e.get("macro_auc") is not None:
                    xs.append(f)
                    ys.append(_finite(e.get("macro_auc")))
                    lo, hi = _finite(e.get("ci_low")), _finite(e.get("ci_high"))
                    errs.append((hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else 0.0)
            if xs:
                series[label] = (xs, ys, errs)
        tstr = _get(u, "experiments", "TSTR")
        if isinstance(tstr, dict) and fractions and tstr.get("macro_auc") is not None:
            series["synthetic only (TSTR)"] = ([min(fractions), max(fractions)], [_finite(tstr["macro_auc"])] * 2, None)
        if series:
            fig = errorbar_lines(
                series,
                xlabel="fraction of the real training set",
                ylabel="macro ROC-AUC",
                title=f"Low-data regime ({name})",
                logx=True,
            )
            report.add_figure(
                f"Low-data utility curves ({name})", fig, caption="Error bars: half the bootstrap 95 % interval."
            )


def _rhythm_section(report: Report, result: dict) -> None:
    from midtecg.evaluation.verdicts import RHYTHM_CHECKS

    report.add_section(
        "Rhythm and beat consistency",
        "Per record: how irregular the RR intervals are (coefficient "
        "of variation), how similar each beat is to the record's median beat (correlation) and how "
        "much the R-wave amplitude varies, and the share of beats with a P wave before the QRS. "
        "Compared as distributions with the real records, overall and by rhythm label (sinus "
        "rhythm or other).",
    )
    _checks_table(report, result, "rhythm")
    comparison = _get(result, "rhythm", "comparison") or {}
    rows = []
    for group, entry in (comparison.get("groups") or {}).items():
        for key, label in RHYTHM_CHECKS:
            m = (entry.get("measures") or {}).get(key)
            if isinstance(m, dict):
                rows.append(
                    {
                        "group": group,
                        "measure": label,
                        "real median": _get(m, "real", "median"),
                        "real 90th pct": _get(m, "real", "p90"),
                        "synthetic median": _get(m, "synth", "median"),
                        "not measurable (synthetic)": _get(m, "synth", "missing_rate"),
                        "KS at floor n": m.get("ks_synth_mean"),
                        "floor": m.get("ks_floor_mean"),
                        "floor sd": m.get("ks_floor_std"),
                        "n real": entry.get("n_real"),
                        "n synthetic": entry.get("n_synth"),
                    }
                )
    if rows:
        report.add_table("By rhythm label", _frame(rows), caption=comparison.get("distance"))
    for group, why in (comparison.get("skipped_groups") or {}).items():
        report.add_note(f"Rhythm group {group} not compared: {why}.")


def _labels_section(report: Report, result: dict) -> None:
    report.add_section(
        "Label adherence (TRTS)",
        "A classifier trained on real records scores the synthetic ECGs "
        "against the diagnoses they were generated for (train on real, test on synthetic). If the "
        "ECGs show their diagnoses, its macro ROC-AUC is about as high as on real test records.",
    )
    _checks_table(report, result, "labels")
    lab = result.get("labels")
    if not isinstance(lab, dict) or "skipped" in lab:
        return
    rows = [
        {
            "label set": name,
            "synthetic AUC": e.get("synth_auc"),
            "real AUC": e.get("real_auc"),
            "real 95 % CI": f"{_fmt(e.get('real_ci_low'), 3)} - {_fmt(e.get('real_ci_high'), 3)}",
            "synthetic / real": e.get("ratio"),
            "n synthetic": e.get("n_synth"),
            "n real": e.get("n_real"),
        }
        for name, e in lab.items()
        if isinstance(e, dict)
    ]
    report.add_table("Macro ROC-AUC", _frame(rows))


def add_timings(report: Report, timings: dict) -> None:
    report.add_section("Timings")
    report.add_table(None, _frame([{"stage": k, "seconds": v} for k, v in timings.items()]))


def build_report(result: dict, *, examples: list[dict] | None = None, title: str | None = None) -> Report:
    """A :class:`~midtecg.evaluation.report.Report` from an evaluation result (the dict or its JSON).

    ``examples``: paired ``{"real", "synth", "fs", "title"}`` signals to plot; ``None`` means "not available"
    (rebuilt from JSON) and the page says so. The timings section is added by the caller.
    """
    real = _get(result, "inputs", "real") or {}
    synth = _get(result, "inputs", "synth") or {}
    report = Report(
        title or "midtecg evaluation",
        subtitle=f"synthetic: {synth.get('source')}  vs  real: {real.get('source')}"
        f"{' (' + str(real.get('split')) + ')' if real.get('split') is not None else ''}",
    )
    _verdict_summary(report, result)
    report.add_note(FLOOR_TEXT)
    report.add_section("Inputs")
    rows = []
    for role in ("real", "synth", "train", "holdout", "utility_synth"):
        d = _get(result, "inputs", role)
        if isinstance(d, dict):
            rows.append(
                {
                    "set": role,
                    **{k: d.get(k) for k in ("source", "split", "n", "fs", "length", "has_ecg_id", "has_labels")},
                }
            )
    report.add_table(None, _frame(rows))
    if _get(result, "inputs", "holdout") == "real":
        report.add_text("Privacy holdout (records the generator never saw): the real set.")
    for note in result.get("notes") or []:
        report.add_note(note)
    for stage, error in (result.get("errors") or {}).items():
        report.add_note(f"Stage {stage} failed: {str(error).splitlines()[0]}", level="warning")
    _distributional_section(report, result)
    _fidelity_section(report, result, examples)
    _rhythm_section(report, result)
    _clinical_section(report, result)
    _labels_section(report, result)
    _privacy_section(report, result)
    _utility_section(report, result)
    return report
