"""The evaluation suite end to end (midtecg.evaluation.suite) on the PTB-XL fixture: the verdicts it must give on a
battery of real, copied and garbage sets, the JSON and HTML it writes, and the CLI.

The fixture has 40 real records. Floors need at least 20 real records (two halves of 10), so here folds 1-8 (20)
are the real set the synthetic ones are compared with (and the privacy holdout), fold 9 (10) plays the generator's
training records and fold 10 (10) a set of unseen real records. The embedding classifier is a one-epoch small XResNet trained
once per module and cached; the measurement cache lives in a temporary folder (tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from midtecg.evaluation import EvaluationConfig, evaluate, load_ecg_set, write_report
from midtecg.evaluation.classifier import ClassifierTrainConfig

TINY = ClassifierTrainConfig(epochs=1, seed=0)  # what `--classifier-epochs 1` builds: one cache entry


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    return EvaluationConfig(
        n_examples=1,
        progress=False,
        on_error="raise",
        classifier=TINY,
        threads=1,
        classifier_dir=str(tmp_path_factory.mktemp("classifier")),
    )


@pytest.fixture(scope="module")
def sets(fixture_cache):
    return {
        name: load_ecg_set((fixture_cache, split), role=name)
        for name, split in (("real", "train"), ("train", [9]), ("unseen", [10]))
    }


REAL, TRAIN = "train", [9]  # splits of the fixture cache: see the module docstring


def _like(s, signals, keep_ids: bool = False):
    """``signals`` with the conditions of set ``s`` (without its ecg_ids unless asked: no pairing)."""
    table = s.table.copy() if keep_ids else s.table.drop(columns=["ecg_id"])
    return (np.ascontiguousarray(signals, dtype=np.float32), table, s.fs)


def _verdicts(result) -> dict:
    return {axis: v["verdict"] for axis, v in result["verdicts"].items()}


@pytest.fixture(scope="module")
def battery(fixture_cache, sets, fast):
    """Each case of the battery evaluated once against the real set, with fold 9 as the training records."""
    real, train, unseen = sets["real"], sets["train"], sets["unseen"]
    rng = np.random.default_rng(0)
    shape = unseen.signals.shape
    t = np.arange(shape[-1]) / real.fs
    copies = train
    cases = {
        "unseen real": _like(unseen, unseen.signals),
        "exact copies": _like(copies, copies.signals),
        "noisy copies": _like(copies, copies.signals + rng.normal(0, 0.01, shape)),
        "white noise": _like(unseen, rng.normal(0, float(real.signals.std()), shape)),
        "sines": _like(unseen, np.broadcast_to(0.5 * np.sin(2 * np.pi * 1.2 * t), shape)),
        "flat lines": _like(unseen, np.zeros(shape)),
    }
    return {
        name: evaluate((fixture_cache, REAL), synth, train=(fixture_cache, TRAIN), config=fast)
        for name, synth in cases.items()
    }


def test_unseen_real_records_are_close_and_pass(battery):
    v = _verdicts(battery["unseen real"])
    assert v["privacy"] == "pass", battery["unseen real"]["verdicts"]["privacy"]
    for axis in ("fidelity", "rhythm", "clinical"):
        assert v[axis] == "close", (axis, battery["unseen real"]["verdicts"][axis]["reason"])


@pytest.mark.parametrize("case", ["exact copies", "noisy copies"])
def test_copies_of_training_records_fail_privacy(battery, case):
    assert _verdicts(battery[case])["privacy"] == "fail", battery[case]["verdicts"]["privacy"]


@pytest.mark.parametrize("case", ["white noise", "sines", "flat lines"])
def test_garbage_is_far_and_privacy_not_informative(battery, case):
    v = _verdicts(battery[case])
    assert v["fidelity"] == "far", battery[case]["verdicts"]["fidelity"]
    assert v["privacy"] == "not_informative", battery[case]["verdicts"]["privacy"]
    assert v["rhythm"] in ("far", "not_informative") and v["rhythm"] != "close"
    assert v["clinical"] != "close"


def test_shifted_and_scaled_copies_fail_in_signal_space_alone(fixture_cache, sets, fast):
    import dataclasses

    copies = sets["train"]
    config = dataclasses.replace(fast, embeddings=False, rhythm=False, clinical=False)
    for name, signals in (
        ("shifted", np.roll(copies.signals, 57, axis=-1)),
        ("scaled", 1.25 * copies.signals),
        ("shifted and scaled", 0.8 * np.roll(copies.signals, -213, axis=-1)),
    ):
        result = evaluate((fixture_cache, REAL), _like(copies, signals), train=(fixture_cache, TRAIN), config=config)
        assert result["verdicts"]["privacy"]["verdict"] == "fail", (name, result["verdicts"]["privacy"])


def _walk_numbers(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def test_every_axis_has_a_verdict_with_reason_and_numbers(battery):
    for name, result in battery.items():
        json.dumps(result, allow_nan=False)
        v = result["verdicts"]
        assert set(v) == {"fidelity", "rhythm", "clinical", "labels", "privacy"}, name
        for axis, entry in v.items():
            allowed = (
                {"pass", "fail", "not_informative", "not_measured"}
                if axis == "privacy"
                else {"close", "far", "not_informative", "not_measured"}
            )
            assert entry["verdict"] in allowed and entry["reason"], (name, axis, entry)
        for check in v["fidelity"]["checks"]:
            assert {"value", "floor_mean", "floor_std", "threshold"} <= set(check)
        for _, value in _walk_numbers(result):
            assert math.isfinite(value)
        assert result["errors"] == {}
        assert "fidelity" not in result  # no ecg_ids: never paired by order


def test_paired_generation_gets_paired_metrics_with_a_real_floor(fixture_cache, sets, fast, tmp_path):
    test = sets["real"]
    rng = np.random.default_rng(1)
    synth = _like(test, test.signals + rng.normal(0, 0.02, test.signals.shape), keep_ids=True)
    result = evaluate(
        (fixture_cache, REAL), synth, train=(fixture_cache, TRAIN), out_dir=tmp_path / "eval", config=fast
    )
    fid = result["fidelity"]
    assert result["pairing"]["method"] == "ecg_id" and fid["n_records"] == len(test)
    assert fid["summary"]["snr_db"] > 15 and fid["floor"]["snr_db"] < 5  # near copies beat another patient by far
    import dataclasses

    unpaired = evaluate(
        (fixture_cache, REAL),
        synth,
        train=(fixture_cache, TRAIN),
        config=dataclasses.replace(fast, paired=False, embeddings=False, rhythm=False, clinical=False),
    )
    assert "fidelity" not in unpaired and any("switched off" in n for n in unpaired["notes"])

    html = (tmp_path / "eval" / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 3 and "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    summary_table = html[html.index("<h2>Summary</h2>") :].split("</table>")[0]
    for words in ("Overall", "fidelity: Do the synthetic ECGs", "privacy: Are the ECGs free of copies"):
        assert words in summary_table
    assert "How to read the verdicts" in html and "real-vs-real floor" in html
    for title in (
        "Fidelity (distributions)",
        "Fidelity (paired)",
        "Rhythm",
        "Clinical coherence",
        "Label adherence",
        "Privacy",
        "Timings",
    ):
        assert title in html
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["verdicts"] == json.loads(json.dumps(result["verdicts"]))

    # rebuilt from the JSON alone: same verdicts, no example plots, and it says so; never over another file
    rebuilt = write_report(tmp_path / "eval", tmp_path / "again.html")
    text = rebuilt.read_text()
    assert "omitted" in text and summary_table.split("<tr>")[2] in text
    with pytest.raises(FileExistsError, match="already exists"):
        write_report(tmp_path / "eval", tmp_path / "eval" / "report.html")
    for damage, match in (
        (lambda d: d.update(verdicts=3), "'verdicts' is missing"),
        (lambda d: d["verdicts"].update(fidelity="close"), "'fidelity' verdict is damaged"),
        (lambda d: d.update(version=1), "older midtecg"),
        (lambda d: d.update(format="other"), "not a midtecg evaluation"),
    ):
        broken = json.loads(json.dumps(saved))
        damage(broken)
        (tmp_path / "broken.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=match):
            write_report(tmp_path / "broken.json", tmp_path / "broken.html")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_report(tmp_path / "broken.json", tmp_path / "broken.html")


def test_label_adherence_scores_requested_labels(fixture_cache, sets, fast):
    test = sets["real"]
    result = evaluate((fixture_cache, REAL), _like(test, test.signals), train=(fixture_cache, TRAIN), config=fast)
    labels = result["labels"]
    for name in ("superdiagnostic", "all"):
        # the same signals with the same labels: TRTS equals the real AUC exactly
        assert labels[name]["synth_auc"] == pytest.approx(labels[name]["real_auc"])
    shuffled = test.table.drop(columns=["ecg_id"]).sample(frac=1.0, random_state=3).reset_index(drop=True)
    other = evaluate(
        (fixture_cache, REAL), (test.signals, shuffled, test.fs), train=(fixture_cache, TRAIN), config=fast
    )
    assert other["labels"]["all"]["synth_auc"] != pytest.approx(labels["all"]["synth_auc"])
    unlabelled = evaluate((fixture_cache, REAL), test.signals, train=(fixture_cache, TRAIN), config=fast)
    assert unlabelled["verdicts"]["labels"]["verdict"] == "not_measured"
    assert "no requested labels" in unlabelled["verdicts"]["labels"]["reason"]


def test_utility_and_a_separate_synthetic_training_set(fixture_cache, sets, fast):
    import dataclasses

    test, train = sets["real"], sets["train"]
    rng = np.random.default_rng(6)
    paired = _like(test, test.signals + rng.normal(0, 0.05, test.signals.shape))
    extra = _like(train.subset(np.arange(7)), train.signals[:7] + rng.normal(0, 0.05, train.signals[:7].shape))
    config = dataclasses.replace(
        fast,
        embeddings=False,
        rhythm=False,
        clinical=False,
        privacy=False,
        utility=True,
        utility_classifier=TINY,
        utility_fractions=(0.5, 1.0),
        utility_label_sets=("superdiagnostic",),
    )
    r = evaluate((fixture_cache, REAL), paired, train=(fixture_cache, TRAIN), utility_synth=extra, config=config)
    experiments = r["utility"]["superdiagnostic"]["experiments"]
    assert {"TRTR", "TSTR", "TRTR+synth", "real_0.5", "real_0.5+synth"} <= set(experiments)
    assert experiments["TSTR"]["n_train"] == 7 and experiments["TRTR+synth"]["n_train"] == len(train) + 7
    assert r["verdicts"]["utility"]["verdict"] in ("close", "far", "not_informative")


def test_cli_end_to_end(fixture_cache, sets, fast, tmp_path, capsys):
    from midtecg.cli import main
    from midtecg.io import write_wfdb

    test = sets["real"]
    rng = np.random.default_rng(5)
    synth = test.signals + rng.normal(0, 0.02, test.signals.shape).astype(np.float32)
    write_wfdb(synth, tmp_path / "synth", fs=100, names=[f"synth_ecg{int(i):05d}" for i in test.ids()])
    out = tmp_path / "eval"
    rc = main(
        [
            "evaluate",
            "--real",
            str(fixture_cache),
            "--synth",
            str(tmp_path / "synth"),
            "--out",
            str(out),
            "--classifier-dir",
            fast.classifier_dir,
            "--classifier-epochs",
            "1",
            "--quiet",
            "--limit",
            "8",
            "--examples",
            "1",
            "--threads",
            "1",
            "--split",
            "train",
            "--train-split",
            "9",
            "--holdout",
            "10",
            "--no-rhythm",
        ]
    )
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "fidelity" in printed.out and "privacy" in printed.out
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["inputs"]["real"]["n"] == saved["pairing"]["n_pairs"] == 8
    assert saved["inputs"]["holdout"]["n"] == 10 and saved["privacy"]["holdout"] == "holdout"
    assert saved["verdicts"]["rhythm"]["verdict"] == "not_measured"
    assert main(["report", str(out / "evaluation.json"), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["report", str(out), "--out", str(out / "report.html")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["report", str(out), "--out", str(out / "report.html"), "--overwrite"]) == 0
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(tmp_path / "missing"),
                "--synth",
                str(tmp_path / "synth"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 2
    )
    assert "prepared cache" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(fixture_cache),
                "--synth",
                str(tmp_path / "nothing"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_cli_generates_with_a_model_then_evaluates(fixture_cache, tmp_path, capsys):
    from tests.training_helpers import train_tiny

    from midtecg.cli import main

    model = train_tiny(fixture_cache, tmp_path / "run", "conditions.mode='numeric'")
    out = tmp_path / "eval"
    rc = main(
        [
            "evaluate",
            "--real",
            str(fixture_cache),
            "--model",
            str(model),
            "--split",
            "10",  # fold numbers, parsed once for the paired generation and the evaluation
            "--out",
            str(out),
            "--limit",
            "4",
            "--sampler",
            "ddim",
            "--steps",
            "2",
            "--no-embeddings",
            "--no-clinical",
            "--no-rhythm",
            "--examples",
            "1",
            "--threads",
            "1",
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["pairing"]["method"] == "ecg_id" and saved["pairing"]["n_pairs"] == 4
    assert (out / "generated" / "ecgs.npz").is_file() and (out / "report.html").is_file()
