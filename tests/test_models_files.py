"""Model files: the weights' sha256, damaged files named, dimension limits checked before allocation."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

from midtecg.models.files import WEIGHTS_SHA256, CheckpointError, read_model_files

REPO = Path(__file__).resolve().parents[1]
COMMITTED_MODELS = [
    REPO / "src" / "midtecg" / "assets" / "default_model",
    REPO / "tests" / "fixtures" / "conditioning_model",
]


@pytest.fixture
def model_copy(tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(REPO / "tests" / "fixtures" / "conditioning_model", target)
    return target


def _edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


# ---- the sha256 of the weights -----------------------------------------------------------------------


@pytest.mark.parametrize("folder", COMMITTED_MODELS, ids=["default_model", "conditioning_model"])
def test_committed_models_carry_the_sha256_of_their_weights(folder):
    config = json.loads((folder / "config.json").read_text())
    assert config[WEIGHTS_SHA256] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    read_model_files(folder)


def test_tampered_weights_are_refused_naming_the_file(model_copy):
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    for position in range(len(data) - 200, len(data)):  # 200 bytes of tensor data: still valid safetensors
        data[position] ^= 0x55
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match the sha256"):
        read_model_files(model_copy)
    _edit_config(model_copy, lambda c: c.pop(WEIGHTS_SHA256))  # an older config without it still loads
    read_model_files(model_copy)


def test_truncated_weights_give_one_line_naming_the_file(model_copy):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors could not be read") as error:
        read_model_files(model_copy)
    assert "\n" not in str(error.value)


def test_a_bad_sha256_entry_and_corrupt_json_name_the_file(model_copy):
    _edit_config(model_copy, lambda c: c.update({WEIGHTS_SHA256: 12}))
    with pytest.raises(CheckpointError, match=f"config.json: {WEIGHTS_SHA256} must be a hex string"):
        read_model_files(model_copy)
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        read_model_files(model_copy)


# ---- dimensions checked before anything is allocated -------------------------------------------------


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("model", "channels", 200_000),
        ("model", "blocks", 100_000),
        ("model", "state_size", 10**7),
        ("model", "length", 10**9),
        ("model", "channels", 0),
        ("model", "channels", 32.0),
        ("model", "blocks", True),
        ("signal", "length", 1e9),
        ("signal", "length", 10**9),
        ("schedule", "num_steps", 10**9),
    ],
)
def test_huge_dimensions_are_refused_at_once_naming_file_and_key(model_copy, section, key, value):
    _edit_config(model_copy, lambda c: c[section].update({key: value}))
    started = time.perf_counter()
    with pytest.raises(ValueError, match=rf"config\.json: {section}\.{key} = .*must be an integer from 1 to"):
        read_model_files(model_copy)
    assert time.perf_counter() - started < 0.5


def test_condition_group_sizes_and_fs_are_limited(model_copy):
    _edit_config(model_copy, lambda c: c["model"]["condition_groups"][0].update({"size": 10**9}))
    with pytest.raises(ValueError, match=r"model\.condition_groups\[0\]\.size = 1000000000"):
        read_model_files(model_copy)
    shutil.copy(REPO / "tests" / "fixtures" / "conditioning_model" / "config.json", model_copy / "config.json")
    for fs in (0, -100, 1e9, float("nan"), "100"):
        _edit_config(model_copy, lambda c, fs=fs: c["signal"].update({"fs": fs}))
        with pytest.raises(ValueError, match=r"config\.json: signal\.fs = "):
            read_model_files(model_copy)
