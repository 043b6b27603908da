"""Device names: one resolver that knows ``auto`` and refuses a missing GPU in one clear line."""

from __future__ import annotations

import pytest
import torch

from midtecg.device import check_device_name, resolve_device


def test_names_are_checked_without_torch():
    assert check_device_name(None) == "auto" and check_device_name(" CUDA:1 ") == "cuda:1"
    for bad in ("gpu", "cuda:", "cuda:x", "cpu0", "tpu"):
        with pytest.raises(ValueError, match=f"device '{bad}'.*auto, cpu, cuda"):
            check_device_name(bad)


def test_auto_and_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected and resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")).type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_clear_error():
    for name in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"device '{name}': CUDA is not available.*--device cpu"):
            resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_gpu_index_beyond_the_machine_is_refused():
    with pytest.raises(ValueError, match="CUDA GPU"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
