"""The sections of the evaluation page that ask whether the synthetic ECGs are like real ones: fidelity as
distributions (embeddings and signals, unpaired) and paired (each synthetic ECG against its real partner),
rhythm and beat consistency, and clinical coherence (delineated intervals, heart rate against conditions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from midtecg.data.leads import WFDB_LEADS
from midtecg.evaluation.report import Report
from midtecg.evaluation.section_parts import checks_table, fmt, lookup

__all__ = ["distributional_section", "fidelity_section", "rhythm_section", "clinical_section"]

INTERVAL_TITLES = {
    "heart_rate": "heart rate (bpm)",
    "pr_ms": "PR (ms)",
    "qrs_ms": "QRS (ms)",
    "qt_ms": "QT (ms)",
    "qtc_ms": "QTc (ms)",
}


def distributional_section(report: Report, result: dict) -> None:
    """Fidelity (distributions): the fidelity verdict's checks, then the Welch distance per lead."""
    report.add_section(
        "Fidelity (distributions)",
        "Unpaired comparisons of the two sets: in the embedding "
        "space of an ECG classifier trained on real records (Frechet distance, KID, k-NN precision "
        "= share of synthetic ECGs that look real, recall = share of real variety the synthetic set "
        "covers) and on the signals themselves (MMD, power spectra, inter-lead correlations).",
    )
    checks_table(report, result, "fidelity")
    clf = lookup(result, "embedding", "classifier")
    if isinstance(clf, dict) and "skipped" in clf:
        report.add_note(f"No embedding metrics: {clf['skipped']}.", level="warning")
    for note in (lookup(result, "embedding", "note"), lookup(result, "distributional", "note")):
        if note:
            report.add_note(str(note))
    p = (result.get("distributional") or {}).get("welch_psd")
    if isinstance(p, dict) and isinstance(p.get("per_lead"), dict):
        report.add_table(
            "Welch power-spectrum distance per lead (dB, whole sets)",
            pd.DataFrame([{"lead": lead, "distance": v} for lead, v in p["per_lead"].items()]),
        )


def fidelity_section(report: Report, result: dict, examples: list[dict] | None) -> None:
    """Fidelity (paired): summary against its floor, per lead, per superclass, and the example plots."""
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
            + (lookup(result, "pairing", "reason") or "switched off or failed")
            + ".",
            level="warning",
        )
        return
    floor = fid.get("floor") or {}
    rows = [
        {
            "set": "synthetic vs its real partner",
            **{k: fid["summary"].get(k) for k in ("snr_db", "rmse", "prd", "abs_r")},
            "interlead_mean": lookup(fid, "interlead", "mean_abs_error"),
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
        pd.DataFrame(rows),
        caption="SNR in dB (exact copies capped at "
        f"{fmt(fid.get('snr_cap_db'))} dB), RMSE in mV, PRD in %. A generator is not expected to match "
        "its partner more closely than another patient with the same diagnosis does (the floor row)"
        + (f"; {floor['skipped']}" if "skipped" in floor else "")
        + ".",
    )
    per_lead = fid.get("per_lead") or {}
    if per_lead:
        leads = list(next(iter(per_lead.values())).keys())
        report.add_table(
            "Per lead", pd.DataFrame([{"lead": lead, **{m: per_lead[m].get(lead) for m in per_lead}} for lead in leads])
        )
    bd = fid.get("breakdown")
    if isinstance(bd, dict) and bd:
        rows = []
        for group, entry in bd.items():
            row = {"superclass": group, "n": entry.get("n")}
            for metric in ("snr_db", "rmse", "prd", "abs_r", "interlead_mean", "interlead_max"):
                row[metric] = lookup(entry, metric, "mean")
            rows.append(row)
        report.add_table("By diagnostic superclass", pd.DataFrame(rows), caption=fid.get("breakdown_by"))
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


def rhythm_section(report: Report, result: dict) -> None:
    """Rhythm and beat consistency: the rhythm verdict's checks, then each measure by rhythm label."""
    from midtecg.evaluation.verdicts import RHYTHM_CHECKS

    report.add_section(
        "Rhythm and beat consistency",
        "Per record: how irregular the RR intervals are (coefficient "
        "of variation), how similar each beat is to the record's median beat (correlation) and how "
        "much the R-wave amplitude varies, and the share of beats with a P wave before the QRS. "
        "Compared as distributions with the real records, overall and by rhythm label (sinus "
        "rhythm or other).",
    )
    checks_table(report, result, "rhythm")
    comparison = lookup(result, "rhythm", "comparison") or {}
    rows = []
    for group, entry in (comparison.get("groups") or {}).items():
        for key, label in RHYTHM_CHECKS:
            m = (entry.get("measures") or {}).get(key)
            if isinstance(m, dict):
                rows.append(
                    {
                        "group": group,
                        "measure": label,
                        "real median": lookup(m, "real", "median"),
                        "real 90th pct": lookup(m, "real", "p90"),
                        "synthetic median": lookup(m, "synth", "median"),
                        "not measurable (synthetic)": lookup(m, "synth", "missing_rate"),
                        "KS at floor n": m.get("ks_synth_mean"),
                        "floor": m.get("ks_floor_mean"),
                        "floor sd": m.get("ks_floor_std"),
                        "n real": entry.get("n_real"),
                        "n synthetic": entry.get("n_synth"),
                    }
                )
    if rows:
        report.add_table("By rhythm label", pd.DataFrame(rows), caption=comparison.get("distance"))
    for group, why in (comparison.get("skipped_groups") or {}).items():
        report.add_note(f"Rhythm group {group} not compared: {why}.")


def clinical_section(report: Report, result: dict) -> None:
    """Clinical coherence: intervals, heart rate against conditions, paired differences, groups, histograms."""
    from midtecg.plotting import interval_histograms

    clin = result.get("clinical")
    report.add_section(
        "Clinical coherence",
        "Both sets delineated the same way: heart rate and the PR, QRS, QT "
        "and QTc intervals (per-record values), and how often delineation fails.",
    )
    checks_table(report, result, "clinical")
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
        pd.DataFrame(rows),
        caption=f"Delineation failure rate: real "
        f"{fmt(cmp.get('failure_rate_real'))}, synthetic {fmt(cmp.get('failure_rate_synth'))}.",
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
        report.add_table("Heart rate vs conditions (bpm)", pd.DataFrame(hr_rows))
    if isinstance(clin.get("paired_differences"), dict):
        report.add_table(
            "Paired differences (synthetic - real partner)",
            pd.DataFrame([{"interval": INTERVAL_TITLES.get(k, k), **v} for k, v in clin["paired_differences"].items()]),
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
                row[f"{k} real"] = lookup(c, "intervals", k, "real_mean")
                row[f"{k} synth"] = lookup(c, "intervals", k, "synth_mean")
            rows.append(row)
        if rows:
            report.add_table(
                f"By {name}",
                pd.DataFrame(rows),
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
