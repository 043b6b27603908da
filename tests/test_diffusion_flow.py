"""Rectified flow: the path, its conversions, and the Euler / Heun samplers on Gaussian data, where the exact
velocity is known in closed form.

Data x0 ~ N(mu, s^2) per dimension, x_t = (1 - t) x0 + t eps: with a = 1 - t, b = t, v_t = a^2 s^2 + b^2,
E[x0 | x_t] = mu + a s^2 (x_t - a mu) / v_t and E[eps | x_t] = b (x_t - a mu) / v_t; the exact velocity is
their difference u*(x_t, t) = E[eps - x0 | x_t]. Both samplers are affine in their start for such data, so
their output moments are read off exactly from two runs (start 0 and start 1).
"""

import math

import numpy as np
import pytest
import torch

from midtecg.diffusion import (
    FLOW_SAMPLER_NAMES,
    EulerSampler,
    HeunSampler,
    IndexedNoise,
    flow_interpolate,
    flow_timesteps,
    make_flow_sampler,
    velocity_target,
    velocity_to_eps_x0,
)

MU = np.array([0.0, 0.5, 2.0, -1.0, 0.3, 1.0])
SD = np.array([1.0, 1.0, 2.0, 0.3, 0.3, 0.5])


def exact_velocity(mu=MU, sd=SD):
    mu_t, var_t = torch.tensor(mu, dtype=torch.float64), torch.tensor(sd, dtype=torch.float64) ** 2
    calls = []

    def fn(x, t):
        assert t.dtype == torch.float32 and t.shape == (x.shape[0],) and bool((t == t[0]).all())
        calls.append(float(t[0]))
        b = t.double().view(-1, *([1] * (x.dim() - 1)))
        a = 1 - b
        resid = (x.double() - a * mu_t) / (a * a * var_t + b * b)
        return (b * resid - (mu_t + a * var_t * resid)).float()

    fn.calls = calls
    return fn


def affine_map(sampler):
    fn, n = exact_velocity(), len(MU)
    b = sampler.sample(fn, (1, n), x_T=torch.zeros(1, n), progress=False)[0].double().numpy()
    return sampler.sample(fn, (1, n), x_T=torch.ones(1, n), progress=False)[0].double().numpy() - b, b


def test_path_and_conversions_are_consistent():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 2, 5, generator=g), torch.randn(3, 2, 5, generator=g)
    t = torch.tensor([0.0, 0.3, 1.0])
    x_t = flow_interpolate(x0, eps, t)
    torch.testing.assert_close(x_t[0], x0[0])
    torch.testing.assert_close(x_t[2], eps[2])
    torch.testing.assert_close(x_t[1], 0.7 * x0[1] + 0.3 * eps[1])
    u = velocity_target(x0, eps)
    eps_back, x0_back = velocity_to_eps_x0(u, x_t, t)
    torch.testing.assert_close(eps_back, eps)
    torch.testing.assert_close(x0_back, x0)
    with pytest.raises(TypeError):
        flow_interpolate(x0, eps, torch.tensor([0, 1, 1]))


@pytest.mark.parametrize(
    "cls,steps,bound",
    [(HeunSampler, 10, 0.025), (HeunSampler, 20, 0.007), (EulerSampler, 20, 0.19), (EulerSampler, 50, 0.08)],
)
def test_samplers_recover_gaussian_data(cls, steps, bound):
    """From N(0, I) at t = 1 (the exact marginal there) the samplers give the data's mean exactly and its
    variance within their discretisation error (measured, worst dimension: Heun 10 steps 2.1 %, 20 steps
    0.6 %; Euler 20 steps 18 %, 50 steps 7.4 %, worst for the narrow s = 0.3 dimensions)."""
    a, b = affine_map(cls(steps))
    assert np.abs(b - MU).max() < 1e-5
    assert np.abs(a**2 / SD**2 - 1).max() < bound, a**2 / SD**2


def test_heun_is_second_order_and_euler_first():
    errs = {
        (cls, n): np.abs(affine_map(cls(n))[0] ** 2 / SD**2 - 1).max()
        for cls in (EulerSampler, HeunSampler)
        for n in (10, 20, 40)
    }
    assert 1.7 < errs[EulerSampler, 20] / errs[EulerSampler, 40] < 2.3
    assert errs[HeunSampler, 20] / errs[HeunSampler, 40] > 3.5


def test_interface_reproducible_and_time_grid():
    assert flow_timesteps(4) == (1.0, 0.75, 0.5, 0.25, 0.0)
    with pytest.raises(ValueError):
        flow_timesteps(0)
    for cls, per_step in ((EulerSampler, 1), (HeunSampler, 2)):
        sampler = cls(5)
        assert sampler.num_steps == 5 and sampler.num_evaluations == 5 * per_step
        fn = exact_velocity(MU[:2, None], SD[:2, None])
        shape = (3, 2, 40)
        x1 = sampler.sample(fn, shape, generator=torch.Generator().manual_seed(1), progress=False)
        x2 = sampler.sample(fn, shape, generator=torch.Generator().manual_seed(1), progress=False)
        assert x1.shape == shape and x1.dtype == torch.float32 and torch.equal(x1, x2)
        fn.calls.clear()
        sampler.sample(fn, shape, progress=False)
        expected = (
            [1.0, 0.8, 0.6, 0.4, 0.2] if cls is EulerSampler else [1.0, 0.8, 0.8, 0.6, 0.6, 0.4, 0.4, 0.2, 0.2, 0.0]
        )
        assert fn.calls == pytest.approx(expected, abs=1e-6)
        with pytest.raises(ValueError):
            sampler.sample(lambda x, t: x[:1], shape, progress=False)
    assert isinstance(make_flow_sampler("Heun", 7), HeunSampler) and make_flow_sampler("euler").num_steps == 20
    assert FLOW_SAMPLER_NAMES == ("euler", "heun")
    with pytest.raises(ValueError, match="unknown flow sampler"):
        make_flow_sampler("ddpm")
    assert math.isclose(sum(b - a for a, b in zip(flow_timesteps(7)[1:], flow_timesteps(7)[:-1])), 1.0)


@pytest.mark.parametrize("cls", [EulerSampler, HeunSampler])
def test_with_indexed_noise_a_row_does_not_depend_on_its_batch(cls):
    """The start of row i is draw 0 of its own stream (seed, indices[i]); the only draw a flow sampler asks for."""
    sampler, shape = cls(4), (7, 2, 30)
    fn = exact_velocity(MU[:2, None], SD[:2, None])
    whole = sampler.sample(fn, shape, noise=IndexedNoise(2, range(7)), progress=False)
    parts = [
        sampler.sample(fn, (len(rows), *shape[1:]), noise=IndexedNoise(2, rows), progress=False)
        for rows in (range(0, 3), range(3, 6), range(6, 7))
    ]
    torch.testing.assert_close(torch.cat(parts), whole, rtol=0, atol=1e-6)
    alone = sampler.sample(fn, (1, *shape[1:]), noise=IndexedNoise(2, [4]), progress=False)
    torch.testing.assert_close(alone[0], whole[4], rtol=0, atol=1e-6)
    other = sampler.sample(fn, shape, noise=IndexedNoise(3, range(7)), progress=False)
    assert (other - whole).abs().amax(dim=(1, 2)).min() > 0.05
    asked = []
    sampler.sample(fn, (2, 3), noise=lambda s, d: asked.append(d) or torch.zeros(s), progress=False)
    assert asked == [0]
