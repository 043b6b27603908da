"""The HTML page of an evaluation: a verdict per axis in words first, then one section per axis with the
deciding numbers and their real-vs-real floors, then the details (tables and figures).

:func:`build_report` turns an evaluation result (the dict :func:`~midtecg.evaluation.suite.evaluate` returns, or
its saved JSON) into a :class:`~midtecg.evaluation.report.Report`: the summary and the inputs here, the sections
of the axes from :mod:`~midtecg.evaluation.realism_sections` (fidelity, rhythm, clinical coherence) and
:mod:`~midtecg.evaluation.use_sections` (label adherence, privacy, utility), built of the pieces in
:mod:`~midtecg.evaluation.section_parts`.
"""

from __future__ import annotations

import pandas as pd

from midtecg.evaluation.realism_sections import (
    clinical_section,
    distributional_section,
    fidelity_section,
    rhythm_section,
)
from midtecg.evaluation.report import Report
from midtecg.evaluation.section_parts import VERDICT_WORDS, lookup
from midtecg.evaluation.use_sections import labels_section, privacy_section, utility_section
from midtecg.evaluation.verdicts import AXIS_TITLES, K_SPREAD, RELATIVE_MARGIN

__all__ = ["build_report", "add_timings", "FLOOR_TEXT"]

FLOOR_TEXT = (
    "How to read the verdicts. Each number is compared with its real-vs-real floor: the same number computed "
    "between two random halves of the real ECGs, repeated over many splits. The floor is what a perfect "
    "generator (one producing new ECGs from the same population) would score with that many records; its "
    "spread (+-) is how much the number moves by chance alone. A synthetic set is called close when its "
    f"number lies within {K_SPREAD:g} spreads of the floor (or {100 * RELATIVE_MARGIN:g} % of it, whichever is "
    "wider), far when it lies beyond, and the suite says it cannot tell when the floor could not be measured. "
    "A synthetic value slightly better than the floor is chance, not a better-than-real generator."
)


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
    real, synth = lookup(result, "inputs", "real") or {}, lookup(result, "inputs", "synth") or {}
    pairing = result.get("pairing") or {}
    report.add_summary(
        "records",
        f"{synth.get('n')} synthetic against {real.get('n')} real; {pairing.get('n_pairs', 0)} pairs by ecg_id"
        if pairing.get("method")
        else f"{synth.get('n')} synthetic against {real.get('n')} real; unpaired",
    )


def add_timings(report: Report, timings: dict) -> None:
    report.add_section("Timings")
    report.add_table(None, pd.DataFrame([{"stage": k, "seconds": v} for k, v in timings.items()]))


def build_report(result: dict, *, examples: list[dict] | None = None, title: str | None = None) -> Report:
    """A :class:`~midtecg.evaluation.report.Report` from an evaluation result (the dict or its JSON).

    ``examples``: paired ``{"real", "synth", "fs", "title"}`` signals to plot; ``None`` means "not available"
    (rebuilt from JSON) and the page says so. The timings section is added by the caller.
    """
    real = lookup(result, "inputs", "real") or {}
    synth = lookup(result, "inputs", "synth") or {}
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
        d = lookup(result, "inputs", role)
        if isinstance(d, dict):
            rows.append(
                {
                    "set": role,
                    **{k: d.get(k) for k in ("source", "split", "n", "fs", "length", "has_ecg_id", "has_labels")},
                }
            )
    report.add_table(None, pd.DataFrame(rows))
    if lookup(result, "inputs", "holdout") == "real":
        report.add_text("Privacy holdout (records the generator never saw): the real set.")
    for note in result.get("notes") or []:
        report.add_note(note)
    for stage, error in (result.get("errors") or {}).items():
        report.add_note(f"Stage {stage} failed: {str(error).splitlines()[0]}", level="warning")
    distributional_section(report, result)
    fidelity_section(report, result, examples)
    rhythm_section(report, result)
    clinical_section(report, result)
    labels_section(report, result)
    privacy_section(report, result)
    utility_section(report, result)
    return report
