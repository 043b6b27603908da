"""Reading the reference SSSD-ECG format: the layout and configuration of a state dict, run configs, and
checkpoints that are not plain tensor dicts."""

from __future__ import annotations

import pytest
import torch

from midtecg.data.errors import DataError
from midtecg.sssd_reference import (
    ReferenceConfig,
    RunConfig,
    infer_reference_config,
    is_reference_buffer,
    load_reference_checkpoint,
    read_run_config,
    reference_layout,
)
from reference_checkpoints import KERNEL_BUFFERS, SMALL, small_state


def test_layout_and_configuration_of_a_reference_state_dict():
    """reference_layout names every tensor of an independently built state dict with its shape, and the
    wavenet_config is read back from those shapes, as from a run config."""
    state = small_state()
    reference = ReferenceConfig.from_dict(SMALL)
    assert reference_layout(reference) == {key: tuple(value.shape) for key, value in state.items()}
    assert infer_reference_config(state) == reference
    buffers = [key for key in state if is_reference_buffer(key)]
    assert len(buffers) == 2 * SMALL["num_res_layers"] * len(KERNEL_BUFFERS)  # two S4 layers per block
    assert all(key.rpartition(".")[2] in KERNEL_BUFFERS for key in buffers)
    assert read_run_config({"wavenet_config": SMALL}) == RunConfig(model=reference, source="run config")
    with pytest.raises(DataError, match="s4_bidirectional must be 0 or 1"):
        ReferenceConfig.from_dict(dict(SMALL, s4_bidirectional=2))


class NotATensor:
    """A custom object, which weights_only unpickling refuses to build."""


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda s: {"model_state_dict": s, "extra": NotATensor()}, "refused: .* holds a .*NotATensor object"),
        (lambda s: {"model_state_dict": dict(s, **{"init_conv.0.conv.bias": NotATensor()})}, "holds a .*NotATensor"),
        (lambda s: {"state_dict": s}, "no 'model_state_dict'"),
        (lambda s: [s], "expected a dict with 'model_state_dict'"),
        (lambda s: {"model_state_dict": list(s.values())}, "must be a dict of tensors"),
    ],
)
def test_refuses_checkpoints_that_are_not_plain_tensor_dicts(content, message, tmp_path):
    path = tmp_path / "bad.pkl"
    torch.save(content(small_state()), path)
    with pytest.raises(DataError, match=message) as error:
        load_reference_checkpoint(path)
    assert str(path) in str(error.value)
