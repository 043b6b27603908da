"""Sampling (sample.py): a cached sampling step reads nothing on the host; compiled sampling gives the eager ECGs;
each ECG's noise is its own stream, so the ECGs do not depend on the batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from host_reads import NoHostReads
from midtecg.data.conditions import ConditionEncoder
from midtecg.diffusion import IndexedNoise, NoiseSchedule, Parameterization, make_sampler
from midtecg.generate import conditions_from_request
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.sample import ECGGenerator, guided_eps_fn, load_generator, sample

FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "conditioning_model"


def tiny_model() -> SSSDECG:
    """A random 2-block x 8-channel denoiser of 64 samples with guidance (its zero-initialised output layer and
    null embedding drawn at random, so that it is not the zero function)."""
    torch.manual_seed(0)
    model = SSSDECG(SSSDConfig(channels=8, blocks=2, length=64, state_size=8, null_conditions=True)).eval()
    torch.nn.init.normal_(model.out_conv.weight, std=0.3)
    torch.nn.init.normal_(model.null_embed["labels"], std=1.0)
    return model.requires_grad_(False)


def tiny_generator(prediction: str = "eps") -> ECGGenerator:
    schedule = NoiseSchedule(num_steps=20)  # ddpm: 20 ancestral steps
    return ECGGenerator(
        tiny_model(),
        schedule,
        ConditionEncoder("labels"),
        fs=100,
        length=64,
        config={},
        source="tiny",
        parameterization=Parameterization(prediction, schedule),
    )


@pytest.mark.parametrize("guidance", [1.0, 2.5])
def test_a_cached_sampling_step_reads_nothing_on_the_host(guidance):
    model = tiny_model()
    conditions = {"labels": (torch.rand(3, 71) < 0.1).float()}
    eps_fn = guided_eps_fn(model, conditions, guidance)
    sampler = make_sampler("ddim", NoiseSchedule(), steps=4, eta=1.0)
    noise = IndexedNoise(1, range(3))
    with torch.no_grad(), model.cached_kernels():
        eps_fn(torch.zeros(3, 8, 64), torch.zeros(3, dtype=torch.long))  # computes the weight tensors once
        with NoHostReads():
            x = sampler.sample(eps_fn, (3, 8, 64), noise=noise, progress=False)
    assert x.shape == (3, 8, 64) and torch.isfinite(x).all()


JOB = pd.concat(
    [conditions_from_request(n=5, labels="NORM"), conditions_from_request(n=5, labels="IMI,SR")], ignore_index=True
)
SAMPLERS = [
    ("eps", "ddpm", None, 0.0, 1.0),
    ("eps", "ddim", 6, 1.0, 1.0),
    ("v", "ddim", 6, 0.0, 1.0),
    ("eps", "dpm++2m", 5, 0.0, 1.0),
    ("eps", "ddpm", None, 0.0, 2.5),
    ("eps", "ddim", 6, 0.5, 3.0),
    ("flow", "euler", 5, 0.0, 1.0),
    ("flow", "heun", 4, 0.0, 2.5),
]


@pytest.mark.parametrize("prediction, sampler, steps, eta, guidance", SAMPLERS)
def test_the_batch_size_does_not_change_the_ecgs(prediction, sampler, steps, eta, guidance):
    """Same seed, batches of 1, 3, 8 or all 10: the same ECGs (stochastic samplers and guidance included);
    ECG i sampled alone with its index is ECG i of the job."""
    generator = tiny_generator(prediction)
    options = dict(sampler=sampler, steps=steps, eta=eta, guidance=guidance, seed=7, progress=False)
    whole = sample(generator, JOB, batch_size=len(JOB), **options).signals
    assert whole.shape == (10, 12, 64) and np.abs(whole).max() > 1.0
    for batch_size in (1, 3, 8):
        np.testing.assert_allclose(
            sample(generator, JOB, batch_size=batch_size, **options).signals, whole, rtol=0, atol=1e-5
        )
    for i in (0, 6, 9):
        alone = sample(generator, JOB.iloc[[i]], indices=[i], **options).signals
        np.testing.assert_allclose(alone[0], whole[i], rtol=0, atol=1e-5)
    # Another seed, or the rows at other indices, give other ECGs.
    for other in (
        sample(generator, JOB, **{**options, "seed": 8}).signals,
        sample(generator, JOB, indices=np.arange(10) + 10, **options).signals,
    ):
        assert np.abs(other - whole).max(axis=(1, 2)).min() > 0.1


def test_job_indices_are_checked():
    generator = tiny_generator()
    request = conditions_from_request(n=2)
    for indices, message in (
        ([0, 0], "distinct"),
        ([0, -1], "distinct non-negative"),
        ([0], "2 whole numbers"),
        ([0.0, 1.0], "whole numbers"),
    ):
        with pytest.raises(ValueError, match=message):
            sample(generator, request, sampler="ddim", steps=2, indices=indices, progress=False)
    with pytest.raises(ValueError, match="seed"):
        sample(generator, request, sampler="ddim", steps=2, seed=-1, progress=False)


@pytest.mark.slow
def test_compiled_sampling_gives_the_eager_ecgs():
    generator = load_generator(FIXTURE_MODEL, device="cpu")
    options = dict(sampler="ddim", steps=3, seed=4, batch_size=2, progress=False)
    eager = sample(
        generator, conditions_from_request(n=2, labels="NORM,SR", age=50, sex="male", heart_rate=70), **options
    ).signals
    torch._dynamo.reset()
    compiled = sample(
        generator,
        conditions_from_request(n=2, labels="NORM,SR", age=50, sex="male", heart_rate=70),
        compile=True,
        **options,
    ).signals
    torch._dynamo.reset()
    np.testing.assert_allclose(compiled, eager, atol=1e-4 * np.abs(eager).max())
    # cuda_graph only applies on CUDA; elsewhere it changes nothing
    np.testing.assert_array_equal(
        sample(
            generator,
            conditions_from_request(n=2, labels="NORM,SR", age=50, sex="male", heart_rate=70),
            cuda_graph=True,
            **options,
        ).signals,
        eager,
    )
