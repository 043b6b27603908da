"""ObjectiveConfig, the [objective] section and a model file's objective object."""

from __future__ import annotations

import pytest

from midtecg.losses import SCALE_PRESETS
from midtecg.losses.config import MEL_SCALE_NAMES, ObjectiveConfig


def test_from_dict_reads_fs_and_the_older_sample_rate():
    config = ObjectiveConfig(kind="midt", fs=500.0)
    assert ObjectiveConfig.from_dict(config.to_dict()) == config
    assert ObjectiveConfig.from_dict({"kind": "midt", "sample_rate": 500}).fs == 500.0


def test_bad_values_name_the_key():
    with pytest.raises(ValueError, match=r"o.json: \[objective\] mel_scales = 'big': must be one of 'paper', 'small'"):
        ObjectiveConfig.from_dict({"mel_scales": "big"}, source="o.json")
    with pytest.raises(ValueError, match=r"fs = 0: must be above 0"):
        ObjectiveConfig.from_dict({"fs": 0})


def test_the_scale_names_are_the_mel_presets():
    assert tuple(SCALE_PRESETS) == MEL_SCALE_NAMES
