"""SSSDConfig: the [model] section and a model file's model object, checked without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from midtecg.data.condition_groups import ConditionGroup
from midtecg.models.config import MODEL_LIMITS, SSSDConfig

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_config_modules_import_without_torch():
    code = (
        "import sys; import midtecg.training.config, midtecg.models.config, midtecg.diffusion.config, "
        "midtecg.losses.config; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_from_dict_round_trips_and_checks_every_size():
    config = SSSDConfig(length=500, channels=16, blocks=2, condition_groups=(ConditionGroup("labels", 71, 8),))
    assert SSSDConfig.from_dict(config.to_dict()) == config
    for key, limit in MODEL_LIMITS.items():
        with pytest.raises(ValueError, match=rf"m.json: \[model\] {key} = {limit + 1}: must be at most {limit}"):
            SSSDConfig.from_dict({**config.to_dict(), key: limit + 1}, source="m.json")
    with pytest.raises(ValueError, match=r"s4_variant = 's5': must be one of"):
        SSSDConfig.from_dict({"s4_variant": "s5"})
    with pytest.raises(ValueError, match=r"state_size must be even"):  # a rule of __post_init__, still named
        SSSDConfig.from_dict({"state_size": 63}, source="m.json")
