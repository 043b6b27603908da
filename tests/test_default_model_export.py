"""experiments/default_model/export.py: a checkpoint becomes the shipped model folder."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from midtecg.models.files import CheckpointError
from midtecg.sample import default_sampler, load_generator

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "default_model" / "export.py"
MODEL = REPO / "tests" / "fixtures" / "conditioning_model"


def _export_module():
    spec = importlib.util.spec_from_file_location("default_model_export", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_records_the_sampler_and_the_preset_paths(tmp_path):
    source = tmp_path / "step-00000100"
    shutil.copytree(MODEL, source)
    (source / "training.json").write_text(json.dumps({"step": 100, "cpu_s": 12.34}))
    target = tmp_path / "shipped"
    _export_module().export(source, target, sampler="ddim", steps=7)
    config = json.loads((target / "config.json").read_text())
    assert config["sampling"] == {"sampler": "ddim", "steps": 7}
    assert config["training_run"]["step"] == 100 and config["training_run"]["cpu_s"] == 12.3
    assert config["experiment"]["data"]["cache"] == "data/shared-ptbxl-100hz"
    assert config["weights_sha256"] == hashlib.sha256((target / "model.safetensors").read_bytes()).hexdigest()
    assert default_sampler(load_generator(target, device="cpu")) == ("ddim", 7)


def test_damaged_weights_are_not_exported(tmp_path):
    source = tmp_path / "ckpt"
    shutil.copytree(MODEL, source)
    data = bytearray((source / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (source / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        _export_module().export(source, tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()
