"""experiments/default_model/targets.py: the conversion of deepfake-ecg's output, the met / how-far logic, and the
whole script on the 40-record fixture with the tiny conditioning model (every target measured, resumable)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from midtecg.data.leads import WFDB_LEADS

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "default_model" / "targets.py"
MODEL = REPO / "tests" / "fixtures" / "conditioning_model"
KEYS = {
    "nsr.rr_cv",
    "nsr.r_amp_cv",
    "heart_rate.contrast",
    "paired.heart_rate_mae",
    "paired.frechet_vs_floor",
    "paired.frechet_vs_deepfake",
    "paired.label_adherence",
    "paired.privacy",
    "cli.cpu_seconds",
}


@pytest.fixture(scope="module")
def targets():
    spec = importlib.util.spec_from_file_location("default_model_targets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deepfake_output_becomes_twelve_leads_in_millivolts_at_100_hz(targets):
    rng = np.random.default_rng(0)
    lead_i, lead_ii = rng.normal(0, 0.3, (2, 3, 5000))  # mV at 500 Hz
    chest = rng.normal(0, 0.5, (3, 6, 5000))
    # Einthoven and Goldberger from I and II, written out here independently of midtecg.data.leads
    limb = {
        "I": lead_i,
        "II": lead_ii,
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2,
        "aVL": lead_i - lead_ii / 2,
        "aVF": lead_ii - lead_i / 2,
    }
    x12 = np.concatenate([np.stack([limb[name] for name in WFDB_LEADS[:6]], axis=1), chest], axis=1)
    microvolts = np.concatenate([lead_i[:, None], lead_ii[:, None], chest], axis=1) * 1000.0  # I, II, V1-V6
    out = targets.deepfake_to_twelve_leads(microvolts)
    assert out.shape == (3, 12, 1000) and out.dtype == np.float32
    np.testing.assert_allclose(out, resample_poly(x12, 1, 5, axis=-1), atol=1e-5)
    flat = targets.deepfake_to_twelve_leads(np.full((1, 8, 5000), 1000.0))  # 1000 uV on every lead
    np.testing.assert_allclose(flat[0, WFDB_LEADS.index("V3"), 100:-100], 1.0, atol=1e-4)
    np.testing.assert_allclose(flat[0, WFDB_LEADS.index("III"), 100:-100], 0.0, atol=1e-4)  # II - I
    with pytest.raises(ValueError, match=r"\(N, 8, L\)"):
        targets.deepfake_to_twelve_leads(np.zeros((2, 12, 5000)))


def test_met_and_how_far(targets):
    import target_table  # beside targets.py, on sys.path once targets.py is loaded

    missed = target_table.target("k", "t", "<=", 0.08, 0.12)
    assert missed["met"] is False and missed["how_far"] == "0.04 above the threshold, 1.50x the threshold"
    assert target_table.target("k", "t", "<=", 0.08, 0.08)["met"] is True
    low = target_table.target("k", "t", ">=", 30.0, 21.0, "bpm")
    assert low["met"] is False and low["how_far"].startswith("9 bpm below the threshold")
    assert target_table.target("k", "t", "<", 30.5, 30.5)["met"] is False
    assert (
        target_table.target("k", "t", "==", "pass", "not_informative", note="far")["how_far"]
        == "not_informative instead of pass: far"
    )
    assert target_table.target("k", "t", "<=", 8.0, None)["met"] is False  # not measurable is not met
    assert target_table.target("k", "t", ">=", 0.8, 2.7, uninformative="weak")["met"] is False
    skipped = target_table.target("k", "t", "<", None, 45.0, note="deepfake-ecg not installed")
    assert skipped["met"] is None and skipped["how_far"] == "deepfake-ecg not installed"
    assert targets.median_unmeasured_high([0.1, np.nan, 0.2]) == 0.2  # the unmeasured record counts as the largest
    assert targets.median_unmeasured_high([0.1, np.nan, np.nan]) is None


@pytest.mark.slow
def test_every_target_measured_on_the_fixture_and_resumed(targets, fixture_cache, tmp_path, capsys):
    out = tmp_path / "targets"
    args = [
        "--cache",
        str(fixture_cache),
        "--out",
        str(out),
        "--model",
        str(MODEL),
        "--n",
        "4",
        "--limit",
        "8",
        "--classifier-epochs",
        "1",
        "--skip-deepfake",
        "--sampler",
        "ddim",
        "--steps",
        "2",
    ]
    report = targets.main(args)
    saved = json.loads((out / "targets.json").read_text())
    assert saved["targets"] == report["targets"] and {t["key"] for t in saved["targets"]} == KEYS
    for t in saved["targets"]:
        if t["key"] == "paired.frechet_vs_deepfake":
            assert t["met"] is None and t["threshold"] is None and t["how_far"] == "skipped (--skip-deepfake)"
            assert isinstance(t["value"], float)  # our own distance is still shown
            continue
        assert t["threshold"] is not None and t["value"] is not None and isinstance(t["met"], bool), t
        if t["op"] == "<=" and not t["uninformative"]:
            assert t["met"] == (t["value"] <= t["threshold"]), t
        assert t["met"] or t["how_far"], t
    stages = saved["stages"]
    assert stages["regularity"]["synth"]["rr_cv"]["n"] == 4 and stages["heart_rate_contrast"]["55"]["n"] == 4
    assert stages["paired"]["n_synth"] == 8 and stages["paired"]["n_real"] == 8
    assert stages["cli_time"]["cpu_s"] > 0.5 and stages["cli_time"]["wall_s"] > 0.5
    table = (out / "targets.md").read_text()
    assert table.count("\n| ") == len(KEYS) + 1  # the header and one row per target
    met = [t["met"] for t in saved["targets"]]
    assert (table.count("| yes |"), table.count("| no |")) == (met.count(True), met.count(False))
    assert (out / "eval" / "paired" / "evaluation.json").is_file()

    done = {p: p.stat().st_mtime_ns for p in (out / "stages").glob("*.json")}
    capsys.readouterr()
    assert targets.main(args)["targets"] == report["targets"]
    assert capsys.readouterr().err.count("done (skipped") == 4  # all but the comparison left out by the flag
    assert not (out / "stages" / "deepfake.json").exists()
    assert done == {p: p.stat().st_mtime_ns for p in done}
    with pytest.raises(SystemExit, match="n: 4 there, 5 now"):
        targets.main([*args[:6], "--n", "5", *args[8:]])
