"""NoiseSchedule: tables, forward noising, posterior, serialisation."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from midtecg.diffusion import TABLE_NAMES, NoiseSchedule


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule()


def test_default_tables_match_method(schedule):
    assert schedule.num_steps == schedule.T == 200
    assert schedule.alpha_bars.dtype == torch.float64
    np.testing.assert_allclose(schedule.betas.numpy(), np.linspace(1e-4, 0.02, 200), rtol=0, atol=1e-15)
    np.testing.assert_allclose(schedule.alpha_bars.numpy(), np.cumprod(1 - np.linspace(1e-4, 0.02, 200)), rtol=1e-12)
    assert schedule.alpha_bars[0].item() == pytest.approx(1 - 1e-4)
    # method.md: alpha_bar at t = T-1 is 0.132 (the forward process never reaches pure noise)
    assert schedule.alpha_bars[-1].item() == pytest.approx(0.132, abs=5e-4)
    assert schedule.alpha_bars_prev[0].item() == 1.0
    assert schedule.posterior_variance[0].item() == 0.0
    assert torch.all(torch.diff(schedule.log_snr) < 0)


def test_float32_accessor_cached(schedule):
    a = schedule.table("alpha_bars")
    assert a.dtype == torch.float32 and a.device.type == "cpu"
    assert schedule.table("alpha_bars") is a
    assert schedule.table("alpha_bars", dtype=torch.float64).dtype == torch.float64
    assert set(TABLE_NAMES) >= {"betas", "alphas", "alpha_bars", "posterior_variance"}
    with pytest.raises(KeyError):
        schedule.table("nope")


def test_forward_noising_statistics(schedule):
    g = torch.Generator().manual_seed(0)
    n, mu, s = 200_000, 0.7, 0.4
    for t in (0, 50, 199):
        x0 = mu + s * torch.randn(n, generator=g)
        noise = torch.randn(n, generator=g)
        xt = schedule.add_noise(x0, noise, torch.full((n,), t))
        ab = schedule.alpha_bars[t].item()
        var = ab * s * s + 1 - ab
        # 5 standard errors of the sample mean / variance
        assert abs(xt.mean().item() - math.sqrt(ab) * mu) < 5 * math.sqrt(var / n)
        assert abs(xt.var().item() / var - 1) < 5 * math.sqrt(2 / n)


def test_predict_inverts_add_noise(schedule):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 8, 100, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 8, 100, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 7, 120, 199])
    xt = schedule.add_noise(x0, eps, t)
    assert xt.dtype == torch.float64
    torch.testing.assert_close(schedule.predict_x0(xt, eps, t), x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(schedule.predict_eps(xt, x0, t), eps, rtol=0, atol=1e-10)
    # float32 inputs stay float32; an int t broadcasts
    x32 = schedule.add_noise(x0.float(), eps.float(), 5)
    assert x32.dtype == torch.float32


def test_posterior_matches_gaussian_conditioning(schedule):
    """q(x_{t-1} | x_t, x0) by conditioning the joint Gaussian of (x_{t-1}, x_t) given x0."""
    ab, ab_prev, alpha = schedule.alpha_bars, schedule.alpha_bars_prev, schedule.alphas
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(200, 3, generator=g, dtype=torch.float64)
    xt = torch.randn(200, 3, generator=g, dtype=torch.float64)
    t = torch.arange(200)
    a, ap, al = ab[:, None], ab_prev[:, None], alpha[:, None]
    cov = al.sqrt() * (1 - ap)  # Cov(x_{t-1}, x_t | x0)
    mean = ap.sqrt() * x0 + cov / (1 - a) * (xt - a.sqrt() * x0)
    var = (1 - ap) - cov**2 / (1 - a)
    torch.testing.assert_close(schedule.posterior_mean(x0, xt, t), mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(schedule.posterior_variance, var[:, 0], rtol=1e-10, atol=1e-15)
    assert schedule.posterior_variance_at(t, xt).shape == (200, 1)


def test_bad_steps_rejected(schedule):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        schedule.add_noise(x, x, torch.tensor([0, 200]))
    with pytest.raises(ValueError):
        schedule.add_noise(x, x, torch.tensor([-1, 0]))
    with pytest.raises(TypeError):
        schedule.add_noise(x, x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError):
        schedule.add_noise(x, x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError):
        NoiseSchedule(kind="sigmoid")
    with pytest.raises(ValueError):
        NoiseSchedule(beta_start=0.1, beta_end=0.01)


def test_dict_round_trip_and_cosine():
    for sched in (NoiseSchedule(), NoiseSchedule(num_steps=50, beta_end=0.05), NoiseSchedule(kind="cosine")):
        back = NoiseSchedule.from_dict(json.loads(json.dumps(sched.to_dict())))
        assert back == sched
        torch.testing.assert_close(back.alpha_bars, sched.alpha_bars, rtol=0, atol=0)
    cos = NoiseSchedule(kind="cosine")
    assert torch.all(torch.diff(cos.alpha_bars) < 0) and 0 < cos.alpha_bars[-1] < 1e-3
    assert torch.all((cos.betas > 0) & (cos.betas <= 0.999))
    with pytest.raises(ValueError):
        NoiseSchedule.from_dict({"num_steps": 10, "bogus": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        NoiseSchedule().num_steps = 3


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_zero_terminal_snr_rescaling(kind):
    """Lin et al. 2024, algorithm 1, checked against its definition: sqrt(alpha_bar) is an affine function of
    the original one, keeps its first value and ends at exactly 0."""
    base = NoiseSchedule(kind=kind)
    zt = NoiseSchedule(kind=kind, zero_terminal_snr=True)
    root, root0 = zt.alpha_bars.sqrt(), base.alpha_bars.sqrt()
    expected = (root0 - root0[-1]) * root0[0] / (root0[0] - root0[-1])
    torch.testing.assert_close(root, expected, rtol=0, atol=1e-12)
    assert zt.alpha_bars[-1] == 0.0 and zt.betas[-1] == 1.0 and zt.terminal_snr_is_zero
    assert not base.terminal_snr_is_zero
    assert float(zt.alpha_bars[0]) == pytest.approx(float(base.alpha_bars[0]), abs=1e-15)
    assert torch.all(torch.diff(zt.alpha_bars) < 0) and torch.all((zt.betas > 0) & (zt.betas <= 1))
    # the process at the last step is pure noise; the tables stay finite except log-SNR = -inf
    x0, eps = torch.ones(2, 3), torch.full((2, 3), 0.5)
    torch.testing.assert_close(zt.add_noise(x0, eps, torch.tensor([199, 199])), eps)
    assert torch.isinf(zt.log_snr[-1]) and torch.isfinite(zt.log_snr[:-1]).all()
    for name in ("posterior_variance", "posterior_mean_coef_x0", "posterior_mean_coef_xt"):
        assert torch.isfinite(zt.table(name, dtype=torch.float64)).all(), name
    assert zt.table("posterior_mean_coef_xt", dtype=torch.float64)[-1] == 0  # alpha_{T-1} = 0
    back = NoiseSchedule.from_dict(json.loads(json.dumps(zt.to_dict())))
    assert back == zt and back.to_dict()["zero_terminal_snr"] is True
    # a config written before the option existed has no such key: the schedule is the plain one
    old = {k: v for k, v in base.to_dict().items() if k != "zero_terminal_snr"}
    assert NoiseSchedule.from_dict(old) == base
    with pytest.raises(ValueError):
        NoiseSchedule(zero_terminal_snr="yes")
