"""DiffusionConfig, the [diffusion] section, and the process Parameterization.from_config builds from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from midtecg.diffusion import DiffusionConfig, NoiseSchedule, Parameterization


def test_from_config_builds_the_schedule_of_the_same_fields():
    config = DiffusionConfig(prediction="v", num_steps=50, kind="cosine", cosine_s=0.01, zero_terminal_snr=True)
    param = Parameterization.from_config(config)
    assert param.prediction == "v"
    assert param.schedule == NoiseSchedule(num_steps=50, kind="cosine", cosine_s=0.01, zero_terminal_snr=True)
    assert torch.equal(
        param.schedule.alpha_bars, NoiseSchedule(50, "cosine", cosine_s=0.01, zero_terminal_snr=True).alpha_bars
    )


def test_every_schedule_field_is_a_diffusion_config_field():
    """No schedule setting can be lost between the config and the process (the cause of issue 12's mel rate)."""
    schedule_fields = {f.name for f in dataclasses.fields(NoiseSchedule) if f.init}
    assert schedule_fields <= {f.name for f in dataclasses.fields(DiffusionConfig)}


def test_betas_out_of_order_are_refused():
    with pytest.raises(ValueError, match="must not exceed beta_end"):
        DiffusionConfig(beta_start=0.03, beta_end=0.02)
