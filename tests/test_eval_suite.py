"""The evaluation suite (midtecg.evaluation.suite): evaluate(), write_report() and the CLI, on the PTB-XL fixture.

Small and CPU-only: the embedding classifier is a one-epoch small XResNet trained once per session and cached
(``classifier_dir``), the other evaluations reuse it; example plots are limited to one.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from midtecg.data.errors import DataError
from midtecg.evaluation import evaluate, load_ecg_set, pair_records, write_report
from midtecg.evaluation.utility import ClassifierTrainConfig

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ptbxl"
TINY = ClassifierTrainConfig(epochs=1, seed=0)  # what `--classifier-epochs 1` builds: one cache entry
FAST = dict(n_examples=1, progress=False, on_error="raise", classifier_config=TINY, threads=1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------- data
def _manual_sets():
    """(test, train) as (signals, table, fs) built from the fixture without the cache (fallback)."""
    from scipy.signal import resample_poly

    from midtecg.data.labels import SCP_CODES, labels_to_vector, parse_scp_codes
    from midtecg.io import read_wfdb_record

    db = pd.read_csv(FIXTURE / "ptbxl_database.csv")

    def read(lr, hr):
        if (FIXTURE / f"{lr}.hea").is_file():
            return read_wfdb_record(FIXTURE / lr)[0]
        return resample_poly(read_wfdb_record(FIXTURE / hr)[0], 1, 5, axis=-1).astype(np.float32)

    signals = np.stack([read(a, b) for a, b in zip(db.filename_lr, db.filename_hr)]).astype(np.float32)
    labels = np.stack([labels_to_vector(parse_scp_codes(text)) for text in db.scp_codes])
    table = pd.concat([db[["ecg_id", "patient_id", "strat_fold", "age", "sex", "height", "weight"]],
                       pd.DataFrame(labels, columns=list(SCP_CODES))], axis=1)

    def split(mask):
        mask = np.asarray(mask)
        return signals[mask], table[mask].reset_index(drop=True), 100.0

    return split(db.strat_fold == 10), split(db.strat_fold <= 8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The fixture prepared as a cache at 100 Hz, or None while midtecg.data.cache is not available."""
    try:
        from midtecg.data.cache import prepare
    except ImportError:
        return None
    out = tmp_path_factory.mktemp("cache") / "ptbxl-100hz"
    prepare(FIXTURE, out, progress=False)
    return out


@pytest.fixture(scope="module")
def sets(cache):
    """Real test and train records: cache inputs when the cache exists, else arrays + tables."""
    if cache is not None:
        return (cache, "test"), (cache, "train")
    return _manual_sets()


@pytest.fixture(scope="module")
def loaded(sets):
    test, train = sets
    return load_ecg_set(test, role="real"), load_ecg_set(train, role="train")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("classifier")


def _as_input(ecg_set, signals=None):
    return (ecg_set.signals if signals is None else signals, ecg_set.table.copy(), ecg_set.fs)


# ---------------------------------------------------------------------------------------- near copy
@pytest.fixture(scope="module")
def near_copy(sets, loaded, classifier_dir, tmp_path_factory):
    """A generator that reproduces its training records up to small noise: evaluated against those records
    (real = train split) with the test split as the privacy holdout."""
    test, train = sets
    _, train_set = loaded
    rng = np.random.default_rng(1)
    noisy = train_set.signals + rng.normal(0.0, 0.01, train_set.signals.shape).astype(np.float32)
    out = tmp_path_factory.mktemp("near_copy")
    result = evaluate(train, _as_input(train_set, noisy), train=train, holdout=test, out_dir=out,
                      classifier_dir=classifier_dir, **FAST)
    return result, out


@pytest.fixture(scope="module")
def white_noise(sets, loaded, classifier_dir, tmp_path_factory):
    test, train = sets
    test_set, _ = loaded
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, float(test_set.signals.std()), test_set.signals.shape).astype(np.float32)
    result = evaluate(test, _as_input(test_set, noise), train=train, classifier_dir=classifier_dir,
                      **{**FAST, "n_examples": 0})  # no out_dir: nothing written, the dict is the same
    return result, None


def test_near_copy_scores_high_fidelity_and_fails_privacy(near_copy):
    result, _ = near_copy
    s = result["summary"]
    assert result["pairing"]["method"] == "ecg_id"
    assert s["n_pairs"] == s["n_real"] == s["n_synth"]
    assert s["snr_db"] > 25.0
    assert s["abs_r"] > 0.99
    assert s["interlead_error_mean"] < 0.05
    gate = result["privacy"]["gate"]
    assert gate["passed"] is False
    # the copies sit closer to their training records than unseen records do
    assert "signal.near_copy_excess" in gate["failed"] or "signal.dcr_p_value" in gate["failed"]
    assert result["privacy"]["signal"]["dcr_ratio_median"] < 0.5
    assert result["privacy"]["holdout"] == "holdout"


def test_white_noise_scores_badly(white_noise, near_copy):
    noise, _ = white_noise
    copy, _ = near_copy
    n, c = noise["summary"], copy["summary"]
    assert n["snr_db"] < 0.0 < 25.0 < c["snr_db"]
    assert n["abs_r"] < 0.2
    assert n["interlead_error_mean"] > 0.2
    assert n["psd_distance_db"] > 3 * max(n["psd_distance_floor_db"], 0.5)
    assert n["mmd2"] > n["mmd2_floor"] + 0.02
    assert n["corr_matrix_error"] > 5 * n["corr_matrix_error_floor"] or n["corr_matrix_error"] > 0.2
    assert n["frechet_at_floor_n"] > n["frechet_floor"]
    assert n["frechet"] > c["frechet"]
    clin = noise["clinical"]["comparison"]
    worse_qrs = (clin["intervals"]["qrs_ms"]["wasserstein"] or 0) > 20
    assert clin["failure_rate_synth"] > clin["failure_rate_real"] or worse_qrs
    # garbage does not look like a copy
    assert noise["privacy"]["signal"]["near_copy_count"] == 0


def _walk_numbers(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def test_json_has_every_section_and_finite_numbers(near_copy, white_noise):
    for result, out in (near_copy, white_noise):
        saved = json.loads((out / "evaluation.json").read_text()) if out is not None else result
        json.dumps(saved, allow_nan=False)
        assert saved["format"] == "midtecg-evaluation"
        for key in ("inputs", "settings", "pairing", "fidelity", "distributional", "clinical", "privacy",
                    "summary", "timings", "notes", "errors"):
            assert key in saved, key
        assert saved["errors"] == {}
        assert saved["summary"] == result["summary"]
        for key, value in saved["summary"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert math.isfinite(value), key
            else:
                assert isinstance(value, str), (key, value)
        for key in ("snr_db", "rmse", "prd", "abs_r", "interlead_error_mean", "frechet", "frechet_floor", "kid",
                    "kid_floor", "mmd2", "mmd2_floor", "psd_distance_db", "delineation_failure_synth",
                    "privacy_gate", "mia_distance_auc"):
            assert key in saved["summary"], key
        for _, value in _walk_numbers(saved):
            assert math.isfinite(value)
        fd = saved["distributional"]["embedding"]["frechet"]
        assert fd["n_real"] == saved["inputs"]["real"]["n"] and fd["n_floor"] == fd["n_real"] // 2
        assert set(saved["fidelity"]["per_lead"]["snr_db"]) >= {"I", "II", "V1", "V6"}
        assert set(saved["fidelity"]["breakdown"]) <= {"CD", "HYP", "MI", "NORM", "STTC"}
        assert len(saved["distributional"]["welch_psd"]["per_lead"]) == 12
        assert "10 ms" in saved["clinical"]["precision_note"]
        assert {"signal", "embedding", "gate"} <= set(saved["privacy"])
        stages = saved["timings"]
        for stage in ("load", "fidelity", "distributional", "classifier", "embeddings", "clinical", "privacy",
                      "total") + (("report",) if out is not None else ()):
            assert stages[stage] >= 0.0, stage


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def test_html_report_is_self_contained_with_figures(near_copy, tmp_path):
    _, out = near_copy
    html = (out / "report.html").read_text()
    images = _images(html)
    # 1 example + PSD + heatmaps + intervals + 2 privacy histograms
    assert len(images) >= 6
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for title in ("Fidelity (paired)", "Distributional", "Clinical coherence", "Privacy", "Timings"):
        assert title in html
    assert "Privacy gate: FAIL" in html
    # rebuilt from the JSON alone: same sections, no example plots, and it says so
    rebuilt = write_report(out / "evaluation.json", tmp_path / "again.html")
    text = rebuilt.read_text()
    assert len(_images(text)) == len(images) - 1
    assert "omitted" in text and "Privacy gate: FAIL" in text


# -------------------------------------------------------------------------------------------- inputs
def test_wfdb_folder_pairs_by_ecg_id_and_reads_conditions(loaded, tmp_path):
    from midtecg.io import save_npz, write_conditions_csv, write_wfdb

    test_set, _ = loaded
    ids = test_set.ids()
    rng = np.random.default_rng(3)
    synth = test_set.signals + rng.normal(0, 0.02, test_set.signals.shape).astype(np.float32)
    order = rng.permutation(len(ids))  # written shuffled: pairing must use the ids, not the order
    names = [f"synth_ecg{int(i):05d}" for i in ids[order]]
    comments = [{"labels": "NORM", "age": 60, "sex": "female", "heart_rate": 70.0} for _ in order]
    folder = tmp_path / "gen" / "wfdb"
    write_wfdb(synth[order], folder, fs=100, names=names, comments=comments)
    real_input = _as_input(test_set)

    # header comments only
    got = load_ecg_set(folder, role="synth")
    assert got.fs == 100.0 and list(got.ids()) == sorted(ids)  # records are read in name order
    assert set(got.table["sex"]) == {1.0} and got.labels71() is not None
    r = evaluate(real_input, folder, embeddings=False, clinical=False, privacy=False, n_examples=0,
                 progress=False, on_error="raise")
    assert r["pairing"]["method"] == "ecg_id" and r["pairing"]["n_pairs"] == len(ids)
    assert r["summary"]["snr_db"] > 15.0
    direct = evaluate(real_input, (synth, test_set.table), embeddings=False, clinical=False, privacy=False,
                      progress=False, on_error="raise")
    assert abs(direct["summary"]["snr_db"] - r["summary"]["snr_db"]) < 0.01  # 1 uV quantisation only

    # conditions.csv next to the wfdb folder (the `midtecg generate` layout) wins over the comments
    write_conditions_csv(tmp_path / "gen" / "conditions.csv",
                         pd.DataFrame({"name": names, "labels": ["IMI"] * len(names), "heart_rate": 80.0}))
    got = load_ecg_set(tmp_path / "gen", role="synth")
    assert np.allclose(got.column("heart_rate"), 80.0)
    assert any("conditions read from" in note for note in got.notes)

    # .npz input
    path = save_npz(tmp_path / "ecgs.npz", synth, pd.DataFrame({"ecg_id": ids}), fs=100)
    assert list(load_ecg_set(path).ids()) == list(ids)


def test_pairing_by_order_unpaired_and_mismatches(loaded):
    test_set, _ = loaded
    x = test_set.signals
    real = load_ecg_set((x, None, 100))
    assert pair_records(real, load_ecg_set((x + 0.01, None, 100)))["method"] == "order"
    r = evaluate((x, None, 100), x[:-2] + 0.01, embeddings=False, clinical=False, privacy=False, progress=False,
                 on_error="raise")
    assert r["pairing"]["method"] is None and "fidelity" not in r
    assert any("counts differ" in note for note in r["notes"])
    assert "mmd" in r["distributional"]
    with pytest.raises(DataError, match="samples"):
        evaluate((x, None, 100), x[..., :500], progress=False)
    with pytest.raises(DataError, match="Hz"):
        evaluate((x, None, 100), (x, None, 500), progress=False)
    with pytest.raises(DataError, match="12 leads"):
        evaluate((x, None, 100), x[:, :8], progress=False)
    with pytest.raises(FileNotFoundError):
        evaluate((x, None, 100), "/nonexistent/synthetic", progress=False)


def test_utility_curves(loaded, tmp_path):
    test_set, train_set = loaded
    rng = np.random.default_rng(4)
    synth = test_set.signals + rng.normal(0, 0.05, test_set.signals.shape).astype(np.float32)
    r = evaluate(_as_input(test_set), _as_input(test_set, synth), train=_as_input(train_set), out_dir=tmp_path,
                 embeddings=False, clinical=False, privacy=False, utility=True, utility_config=TINY,
                 utility_fractions=(0.5, 1.0), utility_label_sets=("superdiagnostic",), n_examples=0,
                 progress=False, on_error="raise")
    u = r["utility"]["superdiagnostic"]
    assert {"TRTR", "TSTR", "TRTR+synth", "real_0.5", "real_0.5+synth"} <= set(u["experiments"])
    assert "auc_superdiagnostic_TSTR" in r["summary"]
    html = (tmp_path / "report.html").read_text()
    assert "Low-data utility curves (superdiagnostic)" in html and len(_images(html)) >= 3


def test_utility_trains_on_a_separate_synthetic_set(loaded, tmp_path):
    """utility_synth: the classifiers add those records (e.g. generated from the training conditions)."""
    test_set, train_set = loaded
    rng = np.random.default_rng(6)
    paired = test_set.signals + rng.normal(0, 0.05, test_set.signals.shape).astype(np.float32)
    extra = train_set.signals[:7] + rng.normal(0, 0.05, train_set.signals[:7].shape).astype(np.float32)
    r = evaluate(_as_input(test_set), _as_input(test_set, paired), train=_as_input(train_set),
                 utility_synth=_as_input(train_set.subset(np.arange(7)), extra), embeddings=False, clinical=False,
                 privacy=False, utility=True, utility_config=TINY, utility_fractions=(1.0,),
                 utility_label_sets=("superdiagnostic",), n_examples=0, progress=False, on_error="raise")
    experiments = r["utility"]["superdiagnostic"]["experiments"]
    assert experiments["TSTR"]["n_synth"] == experiments["TSTR"]["n_train"] == 7
    assert experiments["TRTR+synth"]["n_train"] == len(train_set) + 7
    assert r["inputs"]["utility_synth"]["n"] == 7
    assert r["summary"]["n_synth"] == len(test_set)  # the paired set is still the one evaluated
    with pytest.raises(DataError, match="utility synth"):
        evaluate(_as_input(test_set), _as_input(test_set, paired), train=_as_input(train_set),
                 utility_synth=extra[..., :500], utility=True, embeddings=False, clinical=False, privacy=False,
                 progress=False)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_end_to_end(cache, loaded, classifier_dir, tmp_path, capsys):
    if cache is None:
        pytest.skip("midtecg.data.cache is not available yet")
    from midtecg.cli import main
    from midtecg.io import write_wfdb

    test_set, _ = loaded
    rng = np.random.default_rng(5)
    synth = test_set.signals + rng.normal(0, 0.02, test_set.signals.shape).astype(np.float32)
    write_wfdb(synth, tmp_path / "synth", fs=100, names=[f"synth_ecg{int(i):05d}" for i in test_set.ids()])
    out = tmp_path / "eval"
    rc = main(["evaluate", "--real", str(cache), "--synth", str(tmp_path / "synth"), "--out", str(out),
               "--no-utility", "--classifier-dir", str(classifier_dir), "--classifier-epochs", "1", "--quiet",
               "--limit", "8", "--examples", "1", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["summary"]["n_real"] == saved["summary"]["n_pairs"] == 8
    assert "privacy_gate" in saved["summary"] and saved["errors"] == {}
    assert _images((out / "report.html").read_text())
    assert main(["report", str(out / "evaluation.json"), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()
    capsys.readouterr()
    assert main(["evaluate", "--real", str(tmp_path / "missing"), "--synth", str(tmp_path / "synth"),
                 "--out", str(out), "--quiet"]) == 2
    assert "prepared cache" in capsys.readouterr().err
    assert main(["evaluate", "--real", str(cache), "--synth", str(tmp_path / "nothing"), "--out", str(out),
                 "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_generates_with_a_model_then_evaluates(cache, tmp_path, capsys):
    if cache is None:
        pytest.skip("midtecg.data.cache is not available yet")
    from midtecg.cli import main
    from midtecg.training.config import load_config
    from midtecg.training.loop import train

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.toml", [
        f"data.cache={json.dumps(str(cache))}", f"out_dir={json.dumps(str(tmp_path / 'run'))}",
        "model.channels=8", "model.blocks=1", "conditions.mode='numeric'", "train.steps=2", "train.batch_size=4",
        "train.device='cpu'", "train.threads=1", "train.val_every=1000",
    ])
    model = train(config, progress=False)
    out = tmp_path / "eval"
    rc = main(["evaluate", "--real", str(cache), "--model", str(model), "--out", str(out), "--limit", "4",
               "--sampler", "ddim", "--steps", "2", "--no-embeddings", "--no-clinical", "--examples", "1",
               "--threads", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["pairing"]["method"] == "ecg_id" and saved["summary"]["n_pairs"] == 4
    assert (out / "generated" / "ecgs.npz").is_file() and (out / "report.html").is_file()
