"""Utility experiments: classifier training, sliding-window prediction, AUC and its bootstrap, run_utility,
embeddings and the classifier's save/load round trip. Small and CPU-only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from midtecg.evaluation import embeddings as emb
from midtecg.evaluation.embeddings import embed_signals, embedding_model, load_classifier, save_classifier
from midtecg.evaluation.utility import (
    ClassifierTrainConfig,
    ECGClassifier,
    _weighted_auc,
    bootstrap_auc_ci,
    macro_auc,
    predict,
    run_utility,
    sliding_window_starts,
    train_classifier,
)

torch.set_num_threads(1)

FS = 100


def make_task(n: int, seed: int, length: int = 1000):
    """Two independent, learnable classes on 12-lead 'ECGs' in mV: class 0 = a 0.5 s, 30 Hz burst somewhere
    in the record (so only some windows see it); class 1 = fast (120 bpm) rather than slow (60 bpm) beats."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.5).astype(np.float32)
    t = np.arange(length) / FS
    x = 0.05 * rng.standard_normal((n, 12, length)).astype(np.float32)
    period = np.where(y[:, 1] > 0, 0.5, 1.0)[:, None]
    phase = rng.random((n, 1)) * period
    beats = np.exp(-((((t[None] - phase) % period) / 0.02) ** 2))
    x += (0.5 + 0.5 * rng.random((n, 12, 1))) * beats[:, None, :].astype(np.float32)
    starts = rng.integers(0, length - 50, size=n)
    burst = (0.3 * np.sin(2 * np.pi * 30 * t[:50])).astype(np.float32)
    for i in np.flatnonzero(y[:, 0]):
        x[i, :, starts[i]:starts[i] + 50] += burst
    return x, y


def tiny_config(**kw) -> ClassifierTrainConfig:
    params = dict(epochs=3, batch_size=32, lr=1e-2, model="small", device="cpu", seed=0)
    params.update(kw)
    return ClassifierTrainConfig(**params)


@pytest.fixture(scope="module")
def trained():
    x, y = make_task(256, seed=0)
    xv, yv = make_task(64, seed=2)
    model = train_classifier(x, y, val=(xv, yv), config=tiny_config(), progress=False, label_names=["BURST", "FAST"])
    return model, (x, y)


# ---------------------------------------------------------------------------------------------- training


def test_small_classifier_learns_a_synthetic_task(trained):
    model, (x, _) = trained
    xt, yt = make_task(128, seed=1)
    scores = predict(model, xt)
    assert scores.shape == (128, 2) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    auc = macro_auc(yt, scores)
    assert auc > 0.9, auc
    assert not model.training
    assert len(model.history) == 3 and all("val_macro_auc" in r for r in model.history)
    # standardisation with the global train-set statistics lives in the model
    assert torch.allclose(model.mean, torch.full((12,), float(x.mean())), atol=1e-5)
    assert torch.allclose(model.std, torch.full((12,), float(x.std())), atol=1e-5)


def test_training_is_deterministic_with_seed():
    x, y = make_task(48, seed=3, length=300)
    cfg = tiny_config(epochs=1, batch_size=16)
    a = train_classifier(x, y, config=cfg, progress=False)
    b = train_classifier(x, y, config=cfg, progress=False)
    np.testing.assert_array_equal(predict(a, x), predict(b, x))


def test_training_rejects_bad_input():
    x, y = make_task(8, seed=0, length=300)
    with pytest.raises(ValueError, match="0/1"):
        train_classifier(x, y * 2, config=tiny_config(epochs=1), progress=False)
    bad = x.copy()
    bad[3, 0, 5] = np.nan
    with pytest.raises(ValueError, match="record 3: NaN"):
        train_classifier(bad, y, config=tiny_config(epochs=1), progress=False)
    with pytest.raises(ValueError):
        ClassifierTrainConfig(model="resnet9000")


# ------------------------------------------------------------------------------------------- prediction


class WindowProbe(nn.Module):
    """Logits known per window: class 0 = mean of lead 0, class 1 = -(value of lead 1 at the window start)."""

    fs = FS
    crop_seconds = 0.5
    stride_seconds = None

    def forward(self, x):
        return torch.stack([x[:, 0].mean(-1), -x[:, 1, 0]], dim=1)


@pytest.mark.parametrize("length", [200, 213])
def test_sliding_window_max_matches_hand_computation(length):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 12, length)).astype(np.float32)
    window, stride = 50, 25  # 0.5 s windows, default stride = half a window
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    assert sliding_window_starts(length, window, stride).tolist() == starts
    expected = np.zeros((7, 2))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for i in range(7):
        expected[i, 0] = max(sig(x[i, 0, s:s + window].astype(np.float64).mean()) for s in starts)
        expected[i, 1] = max(sig(-float(x[i, 1, s])) for s in starts)
    for batch_size in (1, 5, 1000):  # chunking must not matter
        got = predict(WindowProbe(), x, batch_size=batch_size)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # explicit arguments override the model's defaults; mean aggregation is available
    got = predict(WindowProbe(), x, fs=FS, crop_seconds=1.0, stride_seconds=1.0, aggregate="mean")
    starts = sliding_window_starts(length, 100, 100)
    mean_expected = np.mean([sig(-x[:, 1, s].astype(np.float64)) for s in starts], axis=0)
    np.testing.assert_allclose(got[:, 1], mean_expected, rtol=1e-5)


def test_short_records_use_one_window():
    x = np.ones((2, 12, 30), dtype=np.float32)
    assert sliding_window_starts(30, 50, 25).tolist() == [0]
    np.testing.assert_allclose(predict(WindowProbe(), x)[:, 0], 1 / (1 + np.exp(-1.0)), rtol=1e-6)


# -------------------------------------------------------------------------------------------------- AUC


def test_macro_auc_matches_sklearn_and_reports_dropped_classes():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 5)) < 0.3).astype(int)
    y[:, 3] = 0  # no positives
    y[:, 4] = 1  # no negatives
    s = np.round(rng.random((300, 5)) + 0.4 * y, 1)  # rounding creates many ties
    auc, dropped = macro_auc(y, s, return_dropped=True)
    reference = np.mean([roc_auc_score(y[:, c], s[:, c]) for c in range(3)])
    assert auc == pytest.approx(reference, abs=1e-12)
    assert dropped == [3, 4]
    _, named = macro_auc(y, s, class_names=list("ABCDE"), return_dropped=True)
    assert named == ["D", "E"]
    # without ties too, and 1-D input
    s2 = rng.random(300) + 0.5 * y[:, 0]
    assert macro_auc(y[:, 0], s2) == pytest.approx(roc_auc_score(y[:, 0], s2), abs=1e-12)
    assert np.isnan(macro_auc(np.zeros((5, 2)), rng.random((5, 2))))
    with pytest.raises(ValueError, match="same shape"):
        macro_auc(y, s[:, :2])


def test_weighted_auc_equals_auc_of_the_resampled_set():
    rng = np.random.default_rng(1)
    y = rng.random((80, 3)) < 0.4
    s = np.round(rng.random((80, 3)), 1)
    idx = rng.integers(0, 80, size=80)
    counts = np.bincount(idx, minlength=80)[None]
    got = _weighted_auc(y, s, counts)[0]
    ref = [roc_auc_score(y[idx, c], s[idx, c]) for c in range(3)]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def data(n):
        y = (rng.random((n, 4)) < 0.3).astype(int)
        return y, rng.random((n, 4)) + 0.6 * y

    widths = []
    for n in (100, 1600):
        y, s = data(n)
        r = bootstrap_auc_ci(y, s, n_boot=300, seed=0)
        assert r["auc"] == pytest.approx(macro_auc(y, s))
        assert r["ci_low"] <= r["auc"] <= r["ci_high"]
        assert r["n"] == n and r["n_boot"] == 300 and r["dropped"] == []
        widths.append(r["ci_high"] - r["ci_low"])
        json.dumps(r)
    assert widths[1] < 0.5 * widths[0]  # ~ 1/sqrt(16) in theory
    # seeded: reproducible; a wider alpha gives a narrower interval
    y, s = data(200)
    a = bootstrap_auc_ci(y, s, n_boot=200, seed=3)
    assert a == bootstrap_auc_ci(y, s, n_boot=200, seed=3)
    b = bootstrap_auc_ci(y, s, n_boot=200, seed=3, alpha=0.5)
    assert b["ci_high"] - b["ci_low"] < a["ci_high"] - a["ci_low"]


# ---------------------------------------------------------------------------------------------- utility


def test_run_utility_structure_on_tiny_data():
    xr, yr = make_task(40, seed=10, length=300)
    xs, ys = make_task(20, seed=11, length=300)
    xt, yt = make_task(24, seed=12, length=300)
    cfg = tiny_config(epochs=1, batch_size=16)
    result = run_utility(xr, yr, xs, ys, xt, yt, fractions=(0.25, 1.0), config=cfg, label_set_name="toy",
                         class_names=["BURST", "FAST"], n_boot=50, progress=False)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["label_set"] == "toy"
    assert result["n_test"] == 24 and result["n_classes"] == 2 and result["fractions"] == [0.25, 1.0]
    exps = result["experiments"]
    assert set(exps) == {"TRTR", "TSTR", "TRTR+synth", "real_0.25", "real_0.25+synth", "real_1",
                         "real_1+synth"}
    n_train = {k: v["n_train"] for k, v in exps.items()}
    assert n_train == {"TRTR": 40, "TSTR": 20, "TRTR+synth": 60, "real_0.25": 10, "real_0.25+synth": 30,
                       "real_1": 40, "real_1+synth": 60}
    assert exps["real_0.25+synth"]["n_real"] == 10 and exps["real_0.25+synth"]["n_synth"] == 20
    assert exps["real_1"]["same_as"] == "TRTR"
    for v in exps.values():
        assert 0.0 <= v["ci_low"] <= v["macro_auc"] <= v["ci_high"] <= 1.0
        assert v["dropped_classes"] == []
        assert set(v) >= {"train", "fraction", "n_real", "n_synth", "n_train", "macro_auc", "ci_low", "ci_high"}


def test_run_utility_rejects_mismatched_inputs():
    xr, yr = make_task(10, seed=0, length=300)
    xs, ys = make_task(10, seed=1, length=200)
    with pytest.raises(ValueError, match="length"):
        run_utility(xr, yr, xs, ys, xr, yr, config=tiny_config(epochs=1), progress=False)
    with pytest.raises(ValueError, match="fractions"):
        run_utility(xr, yr, xr, yr, xr, yr, fractions=(0.0,), config=tiny_config(epochs=1), progress=False)


# ------------------------------------------------------------------------------- embeddings, save / load


def test_save_load_round_trip_gives_identical_outputs(trained, tmp_path):
    model, (x, _) = trained
    save_classifier(model, tmp_path / "clf", extra={"note": "test"})
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["classifier.json", "weights.safetensors"]
    loaded = load_classifier(tmp_path / "clf")
    assert isinstance(loaded, ECGClassifier) and not loaded.training
    assert loaded.label_names == ["BURST", "FAST"] and loaded.extra == {"note": "test"}
    assert loaded.fs == model.fs and loaded.crop_seconds == model.crop_seconds
    assert len(loaded.history) == len(model.history)
    np.testing.assert_array_equal(predict(loaded, x[:16]), predict(model, x[:16]))
    np.testing.assert_array_equal(embed_signals(loaded, x[:16]), embed_signals(model, x[:16]))
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path / "missing")


def test_embed_signals_shapes_and_batching(trained):
    model, (x, _) = trained
    z = embed_signals(model, x[:10], batch_size=4)
    assert z.shape == (10, model.embedding_dim) and z.dtype == np.float32
    np.testing.assert_allclose(z, embed_signals(model, x[:10], batch_size=64), rtol=1e-4, atol=1e-5)
    assert embed_signals(model, x[:10], pool="avg").shape == (10, model.embedding_dim // 2)
    zw = embed_signals(model, x[:10], crop_seconds=2.5)  # mean of the sliding-window embeddings
    assert zw.shape == z.shape
    with torch.no_grad():
        direct = model.embed(torch.from_numpy(x[:2, :, 0:250])).numpy()
    np.testing.assert_allclose(embed_signals(model, x[:2, :, :250]), direct, rtol=1e-4, atol=1e-5)


def test_embedding_model_caches_between_calls(tmp_path, monkeypatch):
    x, y = make_task(32, seed=5, length=300)
    cfg = tiny_config(epochs=1, batch_size=16)
    first = embedding_model(x, y, cache_dir=tmp_path, config=cfg, progress=False)

    def no_training(*a, **k):
        raise AssertionError("should have loaded the cached classifier")

    monkeypatch.setattr(emb, "train_classifier", no_training)
    second = embedding_model(x, y, cache_dir=tmp_path, config=cfg, progress=False)
    np.testing.assert_array_equal(embed_signals(first, x), embed_signals(second, x))
    # other data: retrain (here: the patched trainer is called)
    with pytest.warns(UserWarning, match="retraining"), pytest.raises(AssertionError, match="cached"):
        embedding_model(x[:20], y[:20], cache_dir=tmp_path, config=cfg, progress=False)
