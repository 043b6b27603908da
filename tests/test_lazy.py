"""midtecg.lazy: lazy re-exports of the package __init__ modules."""

import subprocess
import sys

import pytest

from midtecg.lazy import lazy_exports


def test_a_name_is_imported_from_its_module_when_first_used():
    import midtecg.data
    import midtecg.data.leads
    import midtecg.models

    assert midtecg.data.to_twelve_leads is midtecg.data.leads.to_twelve_leads
    from midtecg.data.condition_groups import ConditionGroup

    assert midtecg.models.ConditionGroup is ConditionGroup  # an absolute module: another layer's name
    assert "to_twelve_leads" in midtecg.data.__all__ and "to_twelve_leads" in dir(midtecg.data)
    with pytest.raises(AttributeError, match="midtecg.data.*no_such_name"):
        midtecg.data.no_such_name  # noqa: B018


def test_every_exported_name_exists():
    import importlib

    for package in ("data", "models", "diffusion", "losses", "evaluation"):
        module = importlib.import_module(f"midtecg.{package}")
        for name in module.__all__:
            assert getattr(module, name) is not None, (package, name)


def test_a_name_exported_twice_is_refused():
    with pytest.raises(ValueError, match="'x' is exported by both pkg.a and pkg.b"):
        lazy_exports("pkg", {"a": ("x",), "b": ("x", "y")})


def test_importing_a_package_imports_none_of_its_modules():
    code = (
        "import sys, midtecg.models, midtecg.diffusion, midtecg.losses, midtecg.data, midtecg.evaluation;"
        "print(sorted(m for m in sys.modules if m.startswith('midtecg.') and m.count('.') > 1 or m == 'torch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
