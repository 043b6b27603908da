"""Embeddings from the ECG classifier: shapes and batching, the classifier's save / load round trip, and the
embedding model's cache. Small and CPU-only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifier_task import make_task, tiny_config, trained_classifier
from midtecg.evaluation import embeddings as emb
from midtecg.evaluation.classifier import ECGClassifier, predict
from midtecg.evaluation.embeddings import embed_signals, embedding_model, load_classifier, save_classifier

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained():
    return trained_classifier()


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
