"""The ECG classifier: training on a learnable synthetic task, determinism, input checks, and sliding-window
prediction against a hand computation. Small and CPU-only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from classifier_task import FS, make_task, tiny_config, trained_classifier
from midtecg.evaluation.auc import macro_auc
from midtecg.evaluation.classifier import ClassifierTrainConfig, predict, sliding_window_starts, train_classifier

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained():
    return trained_classifier()


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
        expected[i, 0] = max(sig(x[i, 0, s : s + window].astype(np.float64).mean()) for s in starts)
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
