"""Per-lead data scaling: the statistic, and its errors."""

import numpy as np
import pytest
import torch

from midtecg.data.leads import MODEL_LEADS
from midtecg.data.scaling import SCALINGS, lead_scale


def test_std_per_lead_pooled_over_records_and_time():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3, 200)) * np.array([0.1, 0.3, 2.0])[None, :, None] + 0.05
    expected = np.array([x[:, c].std() for c in range(3)])  # about the lead's mean, ddof 0 vs 1 negligible
    scale = lead_scale(torch.from_numpy(x.astype(np.float32)), "std")
    assert scale.dtype == np.float32 and scale.shape == (3,)
    np.testing.assert_allclose(scale, expected, rtol=1e-4)
    np.testing.assert_allclose(lead_scale(x, "std"), scale, rtol=1e-6)  # NumPy input too
    assert lead_scale(x, "none") is None and SCALINGS == ("none", "std")


def test_errors_name_the_problem():
    x = np.ones((4, 8, 50), dtype=np.float32)
    x[:, 1:] += np.random.default_rng(1).normal(size=(4, 7, 50))
    with pytest.raises(ValueError, match="lead\\(s\\) I are constant"):
        lead_scale(x, "std", MODEL_LEADS)
    with pytest.raises(ValueError, match="unknown data scaling"):
        lead_scale(x, "minmax")
    with pytest.raises(ValueError, match="shape"):
        lead_scale(x[:0], "std")
