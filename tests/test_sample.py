"""Sampling (sample.py): a cached sampling step reads nothing on the host; compiled sampling gives the eager ECGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from host_reads import NoHostReads
from midtecg.diffusion import NoiseSchedule, make_sampler
from midtecg.generate import conditions_from_request
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.sample import guided_eps_fn, load_generator, sample

FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "conditioning_model"


@pytest.mark.parametrize("guidance", [1.0, 2.5])
def test_a_cached_sampling_step_reads_nothing_on_the_host(guidance):
    torch.manual_seed(0)
    model = SSSDECG(SSSDConfig(channels=8, blocks=2, length=64, state_size=8, null_conditions=True)).eval()
    model.requires_grad_(False)
    conditions = {"labels": (torch.rand(3, 71) < 0.1).float()}
    eps_fn = guided_eps_fn(model, conditions, guidance)
    sampler = make_sampler("ddim", NoiseSchedule(), steps=4, eta=1.0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad(), model.cached_kernels():
        eps_fn(torch.zeros(3, 8, 64), torch.zeros(3, dtype=torch.long))  # computes the weight tensors once
        with NoHostReads():
            x = sampler.sample(eps_fn, (3, 8, 64), generator=generator, progress=False)
    assert x.shape == (3, 8, 64) and torch.isfinite(x).all()


@pytest.mark.slow
def test_compiled_sampling_gives_the_eager_ecgs():
    generator = load_generator(FIXTURE_MODEL, device="cpu")
    options = dict(sampler="ddim", steps=3, seed=4, batch_size=2, progress=False)
    eager = sample(generator, conditions_from_request(n=2, labels="NORM,SR", age=50, sex="male", heart_rate=70), **options).signals
    torch._dynamo.reset()
    compiled = sample(generator, conditions_from_request(n=2, labels="NORM,SR", age=50, sex="male", heart_rate=70), compile=True, **options).signals
    torch._dynamo.reset()
    np.testing.assert_allclose(compiled, eager, atol=1e-4 * np.abs(eager).max())
    # cuda_graph only applies on CUDA; elsewhere it changes nothing
    np.testing.assert_array_equal(sample(generator, conditions_from_request(n=2, labels="NORM,SR", age=50, sex="male", heart_rate=70), cuda_graph=True, **options).signals, eager)
