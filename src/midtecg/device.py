"""Device names, for every layer: ``auto`` (the default), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

:func:`check_device_name` checks the spelling without importing torch (the command line refuses a typo at
once); :func:`resolve_device` turns a name into a ``torch.device`` and refuses a device this machine does not
have with one clear ``ValueError``, before any model is built.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_NAMES", "check_device_name", "resolve_device"]

DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"
_NAME = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def check_device_name(name: str | None) -> str:
    """The normalised name (``None`` and ``""`` are ``auto``); ``ValueError`` for anything else."""
    text = "auto" if name is None or not str(name).strip() else str(name).strip().lower()
    if not _NAME.fullmatch(text):
        raise ValueError(f"device {name!r}: expected {DEVICE_NAMES}")
    return text


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The ``torch.device`` for ``name``: ``auto`` / ``None`` is the first CUDA GPU when there is one, else the
    CPU. ``cuda`` / ``cuda:N`` / ``mps`` without that device raise ``ValueError`` naming what is missing."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    text = check_device_name(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {text!r}: CUDA is not available ({built}); use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {text!r}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {text!r}: Apple MPS is not available on this machine")
    return device
