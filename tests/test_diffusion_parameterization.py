"""Parameterization: targets, the conversions back to (eps, x0), the flow time, the Gaussian-optimal output."""

import pytest
import torch

from midtecg.diffusion import (
    DDIMSampler,
    EulerSampler,
    HeunSampler,
    NoiseSchedule,
    Parameterization,
    gaussian_optimal_output,
    make_parameterized_sampler,
)

SCHEDULE = NoiseSchedule()
ZTSNR = NoiseSchedule(zero_terminal_snr=True)


def _batch(prediction, schedule=SCHEDULE, seed=0):
    g = torch.Generator().manual_seed(seed)
    param = Parameterization(prediction, schedule)
    x0, eps = 0.3 * torch.randn(5, 2, 30, generator=g), torch.randn(5, 2, 30, generator=g)
    t = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]) if param.is_flow else torch.tensor([0, 1, 100, 198, 199])
    return param, x0, eps, t


@pytest.mark.parametrize("prediction,schedule", [("eps", SCHEDULE), ("v", SCHEDULE), ("v", ZTSNR), ("flow", SCHEDULE)])
def test_the_target_converts_back_to_eps_and_x0(prediction, schedule):
    param, x0, eps, t = _batch(prediction, schedule)
    x_t = param.add_noise(x0, eps, t)
    a, b = param.coefficients(t, x0)
    torch.testing.assert_close(x_t, a * x0 + b * eps)  # every path is a x0 + b eps
    eps_back, x0_back = param.split(param.target(x0, eps, t), x_t, t)
    torch.testing.assert_close(eps_back, eps, rtol=0, atol=2e-5)
    torch.testing.assert_close(x0_back, x0, rtol=0, atol=2e-5)


def test_targets_by_hand():
    param, x0, eps, t = _batch("v")
    ab = SCHEDULE.alpha_bars.float()[t].view(-1, 1, 1)
    torch.testing.assert_close(param.target(x0, eps, t), ab.sqrt() * eps - (1 - ab).sqrt() * x0)
    param, x0, eps, t = _batch("flow")
    torch.testing.assert_close(param.target(x0, eps, t), eps - x0)
    torch.testing.assert_close(param.add_noise(x0, eps, t), (1 - t.view(-1, 1, 1)) * x0 + t.view(-1, 1, 1) * eps)
    param, x0, eps, t = _batch("eps")
    assert param.target(x0, eps, t) is eps


def test_eps_at_zero_terminal_snr_has_no_x0():
    """alpha_bar_{T-1} = 0: x_t = eps carries nothing of x0; x0_hat is 0 there (finite, no gradient) and
    x0_known marks it, elsewhere the usual (x_t - sqrt(1 - ab) eps) / sqrt(ab)."""
    param, x0, eps, t = _batch("eps", ZTSNR)
    x_t = param.add_noise(x0, eps, t)
    out = eps.clone().requires_grad_(True)
    _, x0_hat = param.split(out, x_t, t)
    assert torch.all(x0_hat[-1] == 0)
    torch.testing.assert_close(x0_hat[:-1], x0[:-1], rtol=0, atol=2e-4)
    x0_hat.sum().backward()
    assert torch.isfinite(out.grad).all() and torch.all(out.grad[-1] == 0)
    assert param.x0_known(t, x0).flatten().tolist() == [1, 1, 1, 1, 0]
    assert Parameterization("eps", SCHEDULE).x0_known(t, x0) is None
    assert Parameterization("v", ZTSNR).x0_known(t, x0) is None


def test_times_model_time_and_serialisation():
    g = torch.Generator().manual_seed(1)
    steps = Parameterization("v").draw_times(1000, g, "cpu")
    assert steps.dtype == torch.long and steps.min() >= 0 and steps.max() == 199
    flow = Parameterization("flow")
    times = flow.draw_times(1000, g, "cpu")
    assert times.dtype == torch.float32 and 0 <= times.min() and times.max() < 1
    assert flow.time_scale == 199.0  # the flow embedding spans the DDPM steps' range 0..T-1
    assert flow.model_time(torch.tensor([0.0, 0.5, 1.0])).tolist() == [0.0, 99.5, 199.0]
    ints = torch.tensor([3, 7])
    assert Parameterization("eps").model_time(ints) is ints
    for param in (Parameterization("v", ZTSNR), flow, Parameterization("flow", time_scale=999.0)):
        assert Parameterization.from_dict(param.to_dict(), param.schedule) == param
    assert Parameterization.from_dict(None, SCHEDULE) == Parameterization("eps", SCHEDULE)
    with pytest.raises(ValueError, match="prediction"):
        Parameterization("x0")
    with pytest.raises(ValueError, match="unknown"):
        Parameterization.from_dict({"prediction": "v", "kind": 1}, SCHEDULE)


@pytest.mark.parametrize("prediction,schedule", [("eps", SCHEDULE), ("v", ZTSNR), ("flow", SCHEDULE)])
def test_gaussian_optimal_output_beats_perturbed_versions(prediction, schedule):
    """On Gaussian data the closed-form output has the lowest MSE to the target: scaling it by 0.9 or 1.1
    or shifting it costs (a Monte Carlo check of optimality, independent of the formula)."""
    g = torch.Generator().manual_seed(2)
    param = Parameterization(prediction, schedule)
    mean, var = torch.tensor([[0.2], [-0.1]]), torch.tensor([[0.09], [0.25]])
    x0 = mean + var.sqrt() * torch.randn(20000, 2, 1, generator=g)
    eps = torch.randn(x0.shape, generator=g)
    t = param.draw_times(20000, g, "cpu")
    x_t = param.add_noise(x0, eps, t)
    target = param.target(x0, eps, t)
    best = gaussian_optimal_output(param, x_t, t, mean, var)
    loss = ((best - target) ** 2).mean().item()
    for other in (0.9 * best, 1.1 * best, best + 0.05):
        assert loss < ((other - target) ** 2).mean().item()


def test_sampler_for_each_parameterization():
    assert isinstance(make_parameterized_sampler(Parameterization("flow")), HeunSampler)
    assert isinstance(make_parameterized_sampler(Parameterization("flow"), "euler", 5), EulerSampler)
    ddim = make_parameterized_sampler(Parameterization("v"), "ddim", 10)
    assert isinstance(ddim, DDIMSampler) and ddim.prediction == "v"
    assert make_parameterized_sampler(Parameterization("eps")).name == "ddpm"
    with pytest.raises(ValueError, match="rectified-flow"):
        make_parameterized_sampler(Parameterization("flow"), "ddim")
    with pytest.raises(ValueError, match="diffusion model"):
        make_parameterized_sampler(Parameterization("eps"), "heun")
