"""A small learnable classification task shared by the tests of the ECG classifier, the utility experiments and
the embeddings: :func:`make_task`, :func:`tiny_config` and :func:`trained_classifier` (trained once per process)."""

from __future__ import annotations

import functools

import numpy as np

from midtecg.evaluation.classifier import ClassifierTrainConfig, train_classifier

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
        x[i, :, starts[i] : starts[i] + 50] += burst
    return x, y


def tiny_config(**kw) -> ClassifierTrainConfig:
    params = dict(epochs=3, batch_size=32, lr=1e-2, model="small", device="cpu", seed=0)
    params.update(kw)
    return ClassifierTrainConfig(**params)


@functools.cache
def trained_classifier():
    """``(model, (x, y))``: a classifier trained for 3 epochs on ``make_task(256)`` (validated on 64 other records)
    and its training data; one object shared by the test modules, so do not modify it."""
    x, y = make_task(256, seed=0)
    xv, yv = make_task(64, seed=2)
    model = train_classifier(x, y, val=(xv, yv), config=tiny_config(), progress=False, label_names=["BURST", "FAST"])
    return model, (x, y)
