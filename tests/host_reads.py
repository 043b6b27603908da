"""A CPU stand-in for ``torch.cuda.set_sync_debug_mode("error")``, shared by the tests of the training step and of
sampling: ``with NoHostReads(): ...`` fails on any operation that copies a tensor's values to the host."""

from __future__ import annotations

import sys

import pytest
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode


class HostRead(AssertionError):
    pass


class NoHostReads(TorchDispatchMode):
    """Raises on every operation that copies a tensor's values to the host (``.item()``, ``float()``, ``bool()``,
    ``.tolist()``, ``.numpy()``, data-dependent shapes): on a GPU each would make the host wait for the device
    (``torch.cuda.set_sync_debug_mode("error")`` semantics, checked on the CPU). Allowed: the diffusion
    schedule's range check of the steps, which runs on CPU tensors only, by design."""

    READS = {
        "_local_scalar_dense",
        "nonzero",
        "masked_select",
        "_unique2",
        "unique_consecutive",
        "equal",
        "is_nonzero",
        "allclose",
    }

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.READS and not _in_cpu_only_check():
            raise HostRead(f"{func} reads a device value on the host")
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        self._patches = pytest.MonkeyPatch()
        for name in ("tolist", "numpy"):
            self._patches.setattr(Tensor, name, _refuse(name))
        return super().__enter__()

    def __exit__(self, *exc):
        self._patches.undo()
        return super().__exit__(*exc)


def _refuse(name):
    def method(*args, **kwargs):
        raise HostRead(f"Tensor.{name}() copies a device value to the host")

    return method


def _in_cpu_only_check() -> bool:
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "_as_index" and frame.f_code.co_filename.endswith("schedule.py"):
            return True
        frame = frame.f_back
    return False
