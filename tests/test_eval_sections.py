"""Tests of midtecg.evaluation.sections on a hand-made evaluation result: the summary in words, the sections in
page order, a note for every stage that failed or did not run. (The full page from a real evaluation is tested
in test_eval_suite.py.)"""

from __future__ import annotations

from midtecg.evaluation.section_parts import VERDICT_WORDS
from midtecg.evaluation.sections import FLOOR_TEXT, add_timings, build_report

RESULT = {
    "inputs": {"real": {"source": "cache", "split": "test", "n": 20}, "synth": {"source": "ecgs.npz", "n": 10}},
    "verdicts": {
        "fidelity": {"verdict": "far", "reason": "FD is 9 floor spreads above its floor."},
        "privacy": {"verdict": "pass", "reason": "No sign of copying."},
    },
    "notes": ["paired metrics switched off"],
    "errors": {"clinical": "ValueError: no beats\nTraceback ..."},
}


def _notes(section: dict) -> list[dict]:
    return [item for item in section["items"] if item["type"] == "note"]


def test_summary_says_the_verdicts_in_words():
    report = build_report(RESULT)
    assert report.subtitle == "synthetic: ecgs.npz  vs  real: cache (test)"
    assert report.summary["Overall"] == "Not yet faithful: far from real ECGs on fidelity."
    fidelity = report.summary["fidelity: Do the synthetic ECGs, as a set, look like real ones?"]
    assert fidelity == f"{VERDICT_WORDS['far']}. FD is 9 floor spreads above its floor."
    assert report.summary["records"] == "10 synthetic against 20 real; unpaired"
    good = build_report({**RESULT, "verdicts": {"privacy": RESULT["verdicts"]["privacy"]}})
    assert good.summary["Overall"] == "Close to real ECGs on every axis that could be judged (privacy)."
    assert build_report({}).summary["Overall"] == "Nothing could be judged: see the notes below."


def test_sections_in_page_order_with_notes_for_what_is_missing():
    report = build_report(RESULT, title="T")
    add_timings(report, {"load": 1.5})
    content = report.to_dict()
    titles = [s["title"] for s in content["sections"]]
    assert titles == [
        None,
        "Inputs",
        "Fidelity (distributions)",
        "Fidelity (paired)",
        "Rhythm and beat consistency",
        "Clinical coherence",
        "Label adherence (TRTS)",
        "Privacy",
        "Timings",
    ]  # no utility block: no utility section
    sections = dict(zip(titles, content["sections"]))
    assert _notes(sections[None])[0]["text"] == FLOOR_TEXT
    inputs = [n["text"] for n in _notes(sections["Inputs"])]
    assert inputs == ["paired metrics switched off", "Stage clinical failed: ValueError: no beats"]
    (paired,) = _notes(sections["Fidelity (paired)"])
    assert paired["level"] == "warning" and paired["text"].startswith("Paired metrics were not computed")
    (gate,) = _notes(sections["Privacy"])
    assert gate["level"] == "info" and gate["text"] == f"Privacy gate: {VERDICT_WORDS['pass']}. No sign of copying."
    (timings,) = sections["Timings"]["items"]
    assert timings["rows"].to_dict("records") == [{"stage": "load", "seconds": 1.5}]
