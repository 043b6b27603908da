"""Known-answer tests of midtecg.evaluation.feature_rows (signals and embeddings as float64 rows)."""

from __future__ import annotations

import numpy as np

from midtecg.evaluation.feature_rows import signal_features


def test_signal_features_downsample_and_center():
    x = np.arange(2 * 1 * 8, dtype=np.float64).reshape(2, 1, 8)
    np.testing.assert_allclose(signal_features(x, downsample=4), [[1.5, 5.5], [9.5, 13.5]])
    c = signal_features(x, center=True)
    np.testing.assert_allclose(c.mean(axis=1), 0.0, atol=1e-12)
    emb = np.ones((3, 5))
    assert signal_features(emb).shape == (3, 5)
