"""Lazy re-exports for package ``__init__`` modules (PEP 562).

``midtecg.data``, ``models``, ``diffusion``, ``losses`` and ``evaluation`` re-export their public names without
importing their modules, so that ``import midtecg.models.config`` (and with it reading a TOML config) does not
load torch: a module is imported when one of its names is first used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``, whose ``exports`` map a module to the names it
    provides. A module is named relative to ``package`` (``"config"``), or absolutely when it starts with
    ``"midtecg."`` (a name that belongs to another layer, re-exported for convenience). A name given by two
    modules is refused."""
    where: dict[str, str] = {}
    for module, names in exports.items():
        full = module if module.startswith("midtecg.") else f"{package}.{module}"
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported by both {where[name]} and {full}")
            where[name] = full
    public = sorted(where)

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return public, __getattr__, __dir__
