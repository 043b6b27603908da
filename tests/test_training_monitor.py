"""The training monitor: its reference levels, its verdicts, and the sample amplitude check."""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from midtecg.data.condition_groups import ConditionGroup
from midtecg.diffusion import NoiseSchedule, Parameterization
from midtecg.losses import ObjectiveConfig, training_loss
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.training import monitor

REFS = {"zero": 1.0, "gaussian": 0.25}


def _data(n=12, length=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 100.0
    beats = torch.exp(-(((t * 1.2) % 1 - 0.5) ** 2) / 2e-3)  # narrow periodic pulses, 72 bpm
    x = 0.8 * beats + 0.05 * torch.randn(n, 2, length, generator=g) - 0.1
    return x, {"labels": torch.zeros(n, 3)}


def test_validation_batches_are_fixed():
    x, cond = _data()
    param = Parameterization("flow")
    first = list(monitor.validation_batches(x, cond, param, 4, 2, 0, torch.device("cpu")))
    second = list(monitor.validation_batches(x, cond, param, 4, 2, 0, torch.device("cpu")))
    assert len(first) == 2
    for a, b in zip(first, second):
        for u, v in zip(a[2:], b[2:]):
            assert torch.equal(u, v)
    torch.testing.assert_close(first[1][0], x[4:8])


@pytest.mark.parametrize("prediction,kind", [("eps", "eps"), ("v", "midt"), ("flow", "eps")])
def test_reference_losses(prediction, kind):
    """``zero`` is the loss of outputting zeros (computed here by hand); the Gaussian baseline is lower."""
    x, cond = _data()
    param, objective = Parameterization(prediction), ObjectiveConfig(kind=kind, mel_scales="small")
    batches = list(monitor.validation_batches(x, cond, param, 4, 3, 0, torch.device("cpu")))
    mean, var = x.mean(dim=(0, 2))[:, None], x.var(dim=(0, 2))[:, None]
    refs = monitor.reference_losses(batches, param, objective, mean, var)
    zero = np.mean(
        [
            training_loss(torch.zeros_like(x_t), noise, x_t, x0, t, param, objective)[0].item()
            for x0, _, t, noise, x_t in batches
        ]
    )
    assert refs["zero"] == pytest.approx(zero, rel=1e-6)
    assert refs["gaussian"] < 0.8 * refs["zero"]
    if prediction == "eps" and kind == "eps":
        assert refs["zero"] == pytest.approx(1.0, abs=0.05)  # E[eps^2] = 1


def test_validation_verdicts():
    assert monitor.validation_warning(100, 0.9, REFS, 500, final=False) == ""  # learning, before the check step
    assert monitor.validation_warning(100, 0.2, REFS, 500, final=False) == ""
    assert monitor.validation_warning(600, 0.2, REFS, 500, final=False) == ""  # below the baseline
    far = monitor.validation_warning(600, 0.3, REFS, 500, final=False)
    assert far.startswith("far from the data") and "0.25" in far and "600" in far
    assert monitor.validation_warning(80, 0.3, REFS, 500, final=True).startswith("far from the data")  # short run
    assert monitor.validation_warning(50, 1.2, REFS, 500, final=False).startswith("diverged")
    assert monitor.validation_warning(50, math.nan, REFS, 500, final=False).startswith("diverged")


def test_amplitude_verdicts_and_reference():
    assert monitor.amplitude_warning(10, 1.0) == "" and monitor.amplitude_warning(10, 2.9) == ""
    assert monitor.amplitude_warning(10, 13.0).startswith("sample amplitude") and "13" in monitor.amplitude_warning(
        10, 13.0
    )
    assert monitor.amplitude_warning(10, 0.1).startswith("sample amplitude")
    assert monitor.amplitude_warning(10, math.inf).startswith("sample amplitude")
    x = torch.arange(1000.0).reshape(1, 1, 1000) - 500  # |x| = 0..500
    assert monitor.amplitude_reference(x) == pytest.approx(np.percentile(np.abs(x.numpy()), 99))


def _model(length=256):
    torch.manual_seed(0)
    return SSSDECG(
        SSSDConfig(in_leads=2, length=length, channels=8, blocks=1, condition_groups=(ConditionGroup("labels", 3, 4),))
    ).eval()


@pytest.mark.parametrize("prediction", ["eps", "flow"])
def test_an_untrained_network_is_flagged_and_lead_scale_is_applied(prediction):
    """The zero-initialised network's samples: for eps, DDIM divides by sqrt(alpha_bar) = 0.36 at the start,
    noise of ~2.75x the N(0, 1) start, far above ECG-like data of p99 ~0.8; for flow (u = 0) the start
    itself comes out. Doubling the signal scale doubles the ratio."""
    x, cond = _data()
    model, param = _model(), Parameterization(prediction)
    reference = monitor.amplitude_reference(x)
    ratio = monitor.sample_amplitude_ratio(model, cond, param, 256, reference, None, 0, nullcontext())
    assert ratio > 3 and monitor.amplitude_warning(5, ratio)
    doubled = monitor.sample_amplitude_ratio(
        model, cond, param, 256, reference, torch.full((2, 1), 2.0), 0, nullcontext()
    )
    assert doubled == pytest.approx(2 * ratio, rel=1e-5)
    assert not model.training


def test_a_network_that_knows_the_data_passes():
    """An eps 'network' that is the exact denoiser of N(mean, var) data with the real per-lead variance gives
    samples of the right amplitude (ratio near 1 for Gaussian-like data)."""
    g = torch.Generator().manual_seed(3)
    x = 0.3 * torch.randn(16, 2, 256, generator=g)
    schedule = NoiseSchedule()

    class Exact(torch.nn.Module):
        config = SSSDConfig(in_leads=2, length=256, channels=8, blocks=1)

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x_t, t, conditions):
            ab = schedule.table("alpha_bars")[t].view(-1, 1, 1)
            return (1 - ab).sqrt() * x_t / (ab * 0.09 + 1 - ab)

        def cached_kernels(self):
            return nullcontext()

    ratio = monitor.sample_amplitude_ratio(
        Exact(),
        {"labels": torch.zeros(16, 3)},
        Parameterization("eps"),
        256,
        monitor.amplitude_reference(x),
        None,
        0,
        nullcontext(),
    )
    assert 0.8 < ratio < 1.25 and monitor.amplitude_warning(5, ratio) == ""
