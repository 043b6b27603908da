"""The sections of the evaluation page that ask what the synthetic ECGs are good for and whether they can be
shared: label adherence (a classifier trained on real records scores them, TRTS), privacy (the audit and its
gate) and utility (classifiers trained on them, tested on real records).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from midtecg.evaluation.report import Report
from midtecg.evaluation.section_parts import VERDICT_WORDS, checks_table, finite, fmt, lookup

__all__ = ["labels_section", "privacy_section", "utility_section"]


def labels_section(report: Report, result: dict) -> None:
    """Label adherence (TRTS): the labels verdict's checks, then the macro ROC-AUC per label set."""
    report.add_section(
        "Label adherence (TRTS)",
        "A classifier trained on real records scores the synthetic ECGs "
        "against the diagnoses they were generated for (train on real, test on synthetic). If the "
        "ECGs show their diagnoses, its macro ROC-AUC is about as high as on real test records.",
    )
    checks_table(report, result, "labels")
    lab = result.get("labels")
    if not isinstance(lab, dict) or "skipped" in lab:
        return
    rows = [
        {
            "label set": name,
            "synthetic AUC": e.get("synth_auc"),
            "real AUC": e.get("real_auc"),
            "real 95 % CI": f"{fmt(e.get('real_ci_low'), 3)} - {fmt(e.get('real_ci_high'), 3)}",
            "synthetic / real": e.get("ratio"),
            "n synthetic": e.get("n_synth"),
            "n real": e.get("n_real"),
        }
        for name, e in lab.items()
        if isinstance(e, dict)
    ]
    report.add_table("Macro ROC-AUC", pd.DataFrame(rows))


def privacy_section(report: Report, result: dict) -> None:
    """Privacy: the gate's verdict and checks, the audit per space and the distance histograms."""
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
    v = lookup(result, "verdicts", "privacy") or {}
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
            pd.DataFrame(
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
        rows.append({"measure": label, **{s: lookup(priv[s], *keys) for s in spaces}})
    report.add_table("Audit", pd.DataFrame(rows), caption="; ".join(f"{s}: {priv[s].get('distance')}" for s in spaces))
    for s in spaces:
        a = priv[s]
        if a.get("dcr_synth") is not None and a.get("dcr_holdout") is not None:
            threshold = finite(lookup(a, "near_copy", "threshold"))
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


def utility_section(report: Report, result: dict) -> None:
    """Utility (only when it was run): the experiments per label set and the low-data curves."""
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
        report.add_table(
            f"Label set {name} ({u.get('n_classes')} classes, device {u.get('device')})", pd.DataFrame(rows)
        )
        fractions = [f for f in (u.get("fractions") or []) if f is not None]
        series = {}
        for label, suffix in (("real only", ""), ("real + synthetic", "+synth")):
            xs, ys, errs = [], [], []
            for f in fractions:
                e = lookup(u, "experiments", f"real_{f:g}{suffix}") or (
                    lookup(u, "experiments", "TRTR" + suffix) if f == 1.0 else None
                )
                if isinstance(e, dict) and e.get("macro_auc") is not None:
                    xs.append(f)
                    ys.append(finite(e.get("macro_auc")))
                    lo, hi = finite(e.get("ci_low")), finite(e.get("ci_high"))
                    errs.append((hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else 0.0)
            if xs:
                series[label] = (xs, ys, errs)
        tstr = lookup(u, "experiments", "TSTR")
        if isinstance(tstr, dict) and fractions and tstr.get("macro_auc") is not None:
            series["synthetic only (TSTR)"] = ([min(fractions), max(fractions)], [finite(tstr["macro_auc"])] * 2, None)
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
