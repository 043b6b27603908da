"""Argument types and checks of the `midtecg` command, none of which imports torch, pandas or matplotlib.

Types for argparse (``COUNT``, ``NON_NEGATIVE``, ``FINITE``, :func:`device_name`, :func:`output_formats`) refuse a
bad value while the command line is parsed; :func:`existing` and :func:`prepared_cache` check input paths and
:func:`parse_split` reads a split argument before a command imports anything heavy.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from midtecg.device import check_device_name
from midtecg.output_layout import check_formats

__all__ = [
    "COUNT",
    "NON_NEGATIVE",
    "FINITE",
    "SAMPLERS",
    "device_name",
    "output_formats",
    "existing",
    "prepared_cache",
    "parse_split",
]


def _number_type(kind, low=None, what="a number"):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


COUNT = _number_type(int, 1, "a whole number of at least 1")
NON_NEGATIVE = _number_type(int, 0, "a whole number of at least 0")
FINITE = _number_type(float, None, "a finite number")

# midtecg.diffusion SAMPLER_NAMES + FLOW_SAMPLER_NAMES, restated so that arguments are checked before torch loads
SAMPLERS = ("ddpm", "ddim", "dpm++2m", "euler", "heun")


def device_name(text: str) -> str:
    """An argparse type: a device name (auto, cpu, cuda, cuda:N, mps), checked without importing torch."""
    try:
        return check_device_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def output_formats(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated output formats (``midtecg.output_layout.OUTPUT_FORMATS``)."""
    try:
        return check_formats(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def existing(path, flag: str, kind: str = "path") -> Path:
    """``path`` when it exists (``kind``: "file", "folder" or "path"), else ``FileNotFoundError`` naming ``flag``."""
    p = Path(path)
    ok = p.is_file() if kind == "file" else p.is_dir() if kind == "folder" else p.exists()
    if not ok:
        what = {"file": "no such file", "folder": "no such folder"}.get(kind, "does not exist")
        raise FileNotFoundError(f"{flag} {p}: {what}")
    return p


def prepared_cache(path, flag: str) -> Path:
    """``path`` when it is a folder written by `midtecg prepare`, else ``FileNotFoundError`` naming ``flag``."""
    p = Path(path)
    if not (p / "manifest.json").is_file():
        raise FileNotFoundError(f"{flag} {p}: not a prepared cache (no manifest.json); run `midtecg prepare` first")
    return p


def parse_split(text: str):
    """A split name (train, val, test) or comma-separated fold numbers ("9", "9,10") as a list of ints."""
    parts = [p.strip() for p in text.split(",")]
    return [int(p) for p in parts] if all(p.isdigit() for p in parts) else text
