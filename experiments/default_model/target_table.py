"""The targets of issue 12 as a table: each one measured, compared with its threshold, met or not and by how
far (``targets``), and that table as Markdown (``markdown``). ``targets.py`` measures; this module judges.
"""

from __future__ import annotations

import math

__all__ = ["LABELS", "HEART_RATES", "STAGES", "number", "target", "how_far", "targets", "markdown"]

LABELS = "NORM,SR"  # the labels of the regularity and heart-rate requests
HEART_RATES = (55, 110)  # the heart-rate contrast's two requests, bpm
STAGES = ("regularity", "heart_rate_contrast", "paired", "deepfake", "cli_time")  # what targets.py measures


def number(value) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def target(
    key: str, what: str, op: str, threshold, value, unit: str = "", note: str = "", uninformative: str = ""
) -> dict:
    """One target: ``met`` is whether ``value op threshold`` (False when the value could not be measured or, as
    ``uninformative`` says why, means nothing; None when the comparison was not made)."""
    skipped = threshold is None
    if skipped or value is None or uninformative:
        met = None if skipped else False
    else:
        met = {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold, "==": value == threshold}[op]
    entry = {
        "key": key,
        "target": what,
        "op": op,
        "threshold": threshold,
        "value": value,
        "unit": unit,
        "met": met,
        "note": note,
        "uninformative": uninformative,
    }
    return {**entry, "how_far": how_far(entry)}


def how_far(t: dict) -> str:
    if t["met"] is None:
        return t["note"] or "not measured"
    if t["met"]:
        return ""
    if t["uninformative"]:
        return f"not informative: {t['uninformative']}"
    value, threshold, unit = t["value"], t["threshold"], f" {t['unit']}" if t["unit"] else ""
    if value is None:
        return f"could not be measured{': ' + t['note'] if t['note'] else ''}"
    if t["op"] == "==":
        return f"{value} instead of {threshold}{': ' + t['note'] if t['note'] else ''}"
    gap = abs(value - threshold)
    side = "above" if t["op"] in ("<=", "<") else "below"
    times = f", {value / threshold:.2f}x the threshold" if threshold else ""
    return f"{gap:.3g}{unit} {side} the threshold{times}"


def targets(stages: dict) -> list[dict]:
    from midtecg.evaluation.verdicts import MIN_INFORMATIVE_AUC

    reg, hr, pair, fake, cli = (stages[name] for name in STAGES)
    real = reg.get("real") or {}
    rows = []
    for key, limit, title in (("rr_cv", 0.08, "RR-interval CV"), ("r_amp_cv", 0.15, "R-amplitude CV")):
        s = reg["synth"][key]
        reference = real.get(key, {}).get("median")
        rows.append(
            target(
                f"nsr.{key}",
                f"`--labels NORM,SR`: median {title}",
                "<=",
                limit,
                s["median"],
                note=f"n = {s['n']}, {s['n_unmeasured']} unmeasured; real fold-10 NORM+SR median "
                f"{_cell(reference)} (n = {reg['real_n']})",
            )
        )
    low, high = (None, None) if "error" in hr else (hr[str(r)]["median_bpm"] for r in HEART_RATES)
    note = (
        hr["error"]
        if "error" in hr
        else (f"medians {_cell(low)} and {_cell(high)} bpm, n = {hr[str(HEART_RATES[0])]['n']} each")
    )
    rows.append(
        target(
            "heart_rate.contrast",
            "`--heart-rate 110` minus `--heart-rate 55`: difference of the median measured heart rates",
            ">=",
            30.0,
            None if low is None or high is None else high - low,
            "bpm",
            note=note,
        )
    )
    counts = f"n_synth = {pair['n_synth']}, n_real = {pair['n_real']}"
    rows.append(
        target(
            "paired.heart_rate_mae",
            "paired generation: requested vs measured heart-rate MAE",
            "<=",
            8.0,
            pair["heart_rate_mae_bpm"],
            "bpm",
            note=counts,
        )
    )
    floor = pair["frechet_floor"]
    rows.append(
        target(
            "paired.frechet_vs_floor",
            "Frechet distance within 2x the real-vs-real floor",
            "<=",
            None if floor is None else 2 * floor,
            pair["frechet"],
            note=f"floor {_cell(floor)} +- {_cell(pair['frechet_floor_std'])} at n = "
            f"{pair['frechet_n_floor']}; {counts}",
        )
    )
    if "skipped" in fake:
        fake_fd, fake_note = None, fake["skipped"]
    else:
        fake_fd = fake["frechet"]
        fake_note = f"deepfake-ecg: n_synth = {fake['n_synth']}, n_real = {fake['n_real']}; midtecg: {counts}"
    rows.append(
        target(
            "paired.frechet_vs_deepfake",
            "Frechet distance below deepfake-ecg's (same real set, same n)",
            "<",
            fake_fd,
            pair["frechet"],
            note=fake_note,
        )
    )
    real_auc = pair["label_real_auc"]
    weak = (
        f"the classifier reaches only {real_auc:.2f} AUC on the real records (below {MIN_INFORMATIVE_AUC})"
        if real_auc is not None and real_auc < MIN_INFORMATIVE_AUC
        else ""
    )
    rows.append(
        target(
            "paired.label_adherence",
            "label adherence: TRTS superdiagnostic macro AUC / real AUC",
            ">=",
            0.8,
            pair["label_ratio"],
            note=f"synthetic AUC {_cell(pair['label_synth_auc'])}, real AUC {_cell(real_auc)}; {counts}",
            uninformative=weak,
        )
    )
    rows.append(
        target(
            "paired.privacy",
            "privacy gate passes (and is informative)",
            "==",
            "pass",
            pair["privacy_verdict"],
            note=pair["privacy_reason"] or "",
        )
    )
    rows.append(
        target(
            "cli.cpu_seconds",
            f"`{cli['command']}` (one thread, model loading included): CPU time",
            "<=",
            40.0,
            number(cli["cpu_s"]),
            "CPU-s",
            note=f"wall {cli['wall_s']:.1f} s",
        )
    )
    return rows


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(rows: list[dict], settings: dict) -> str:
    met = sum(r["met"] is True for r in rows)
    steps = f" ({settings['steps']} steps)" if settings["steps"] else ""
    lines = [
        f"# Targets of a built-in model: {met} of {len(rows)} met",
        "",
        f"Model `{settings['model']}`; cache `{settings['cache']}`; n = {settings['n']} per request, paired "
        f"records: {settings['limit'] or 'all of fold 10'}; sampler: {settings['sampler'] or 'the model default'}"
        f"{steps}; seed {settings['seed']}; embedding "
        f"classifier {settings['classifier_epochs']} epochs.",
        "",
        "| target | threshold | measured | met | how far / note |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        threshold = "n/a" if r["threshold"] is None else f"{r['op']} {_cell(r['threshold'])}"
        met_text = {True: "yes", False: "no", None: "not measured"}[r["met"]]
        detail = "; ".join(filter(None, [r["how_far"] if r["met"] is False else "", r["note"]]))
        lines.append(
            f"| {r['target']} | {threshold} | {_cell(r['value'])}{' ' + r['unit'] if r['unit'] else ''} | "
            f"{met_text} | {detail} |"
        )
    return "\n".join(lines) + "\n"
