"""Checkpoints: the weights' sha256, dimension limits before allocation, and resuming past damaged checkpoints."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from midtecg.training.checkpoint import (
    TRAINING_SHA256,
    WEIGHTS_SHA256,
    CheckpointError,
    latest_checkpoint,
    load_training_state,
    read_model_files,
    resume_training_state,
    save_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED_MODELS = [REPO / "src" / "midtecg" / "assets" / "default_model",
                    REPO / "tests" / "fixtures" / "conditioning_model"]


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

@pytest.mark.parametrize("section, key, value", [
    ("model", "channels", 200_000), ("model", "blocks", 100_000), ("model", "state_size", 10**7),
    ("model", "length", 10**9), ("model", "channels", 0), ("model", "channels", 32.0), ("model", "blocks", True),
    ("signal", "length", 1e9), ("signal", "length", 10**9), ("schedule", "num_steps", 10**9),
])
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


# ---- writing and resuming ----------------------------------------------------------------------------

def _state(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    ema = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    return model, ema, optimizer, scheduler


def _run(run_dir: Path, steps=(10, 20, 30), keep=3) -> dict[int, torch.Tensor]:
    """Checkpoints at ``steps`` of a toy run; returns the model weight at each."""
    model, ema, optimizer, scheduler = _state()
    weights = {}
    for step in steps:
        model(torch.randn(2, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        ema.load_state_dict(model.state_dict())
        save_checkpoint(run_dir, step, {"model": {"channels": 4}}, model, ema, optimizer, scheduler, keep=keep)
        weights[step] = model.weight.detach().clone()
    return weights


def _resume(run_dir: Path):
    model, ema, optimizer, scheduler = _state(seed=1)
    lines = []
    resumed = resume_training_state(run_dir, model, ema, optimizer, scheduler, report=lines.append)
    return resumed, model, lines


def test_checkpoints_record_the_sha256_of_both_weight_files(tmp_path):
    _run(tmp_path / "run", steps=(10,))
    folder = tmp_path / "run" / "step-00000010"
    config = json.loads((folder / "config.json").read_text())
    meta = json.loads((folder / "training.json").read_text())
    assert config[WEIGHTS_SHA256] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert meta[TRAINING_SHA256] == hashlib.sha256((folder / "training.safetensors").read_bytes()).hexdigest()
    read_model_files(tmp_path / "run")  # a run folder: its newest checkpoint


def test_resume_restores_the_newest_checkpoint_silently(tmp_path):
    weights = _run(tmp_path / "run")
    (folder, meta), model, lines = _resume(tmp_path / "run")
    assert folder.name == "step-00000030" and meta["step"] == 30 and lines == []
    assert torch.equal(model.weight, weights[30])


def test_an_empty_run_folder_resumes_as_a_fresh_run(tmp_path):
    assert _resume(tmp_path)[0] is None


@pytest.mark.parametrize("damage", ["no training.json", "truncated training", "truncated model", "altered training",
                                    "corrupt training.json", "missing folder"])
def test_resume_falls_back_to_the_newest_complete_checkpoint_and_says_so(tmp_path, damage):
    run_dir = tmp_path / "run"
    weights = _run(run_dir)
    newest = run_dir / "step-00000030"
    if damage == "no training.json":
        (newest / "training.json").unlink()
    elif damage.startswith("truncated"):
        path = newest / f"{damage.split()[1]}.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "altered training":
        path = newest / "training.safetensors"
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "corrupt training.json":
        (newest / "training.json").write_text('{"step": 3')
    else:
        shutil.rmtree(newest)
    (folder, meta), model, lines = _resume(run_dir)
    assert folder.name == "step-00000020" and meta["step"] == 20
    assert torch.equal(model.weight, weights[20])
    assert lines[-1].startswith(f"{folder} is the newest complete checkpoint")
    named = {"no training.json": "training.json is missing",
             "truncated training": "training.safetensors could not",
             "truncated model": "model.safetensors could not",
             "altered training": "training.safetensors does not match",
             "corrupt training.json": "training.json is not valid JSON",
             "missing folder": "step-00000030, which does not exist"}
    assert named[damage] in lines[0] and "step-00000030" in lines[0]
    if damage != "missing folder":
        assert (run_dir / "broken-step-00000030").is_dir() and not newest.exists()


def test_a_corrupt_latest_json_is_reported_and_skipped(tmp_path):
    _run(tmp_path / "run")
    (tmp_path / "run" / "latest.json").write_text("[1, 2")
    (folder, _), _, lines = _resume(tmp_path / "run")
    assert folder.name == "step-00000030" and "latest.json is not valid JSON" in lines[0]
    assert latest_checkpoint(tmp_path / "run") == folder
    (tmp_path / "run" / "latest.json").write_text('{"path": "../../elsewhere"}')
    assert "must name a checkpoint folder" in _resume(tmp_path / "run")[2][0]


def test_resume_refuses_when_no_checkpoint_is_complete(tmp_path):
    run_dir = tmp_path / "run"
    _run(run_dir, steps=(10,))
    (run_dir / "step-00000010" / "training.json").unlink()
    with pytest.raises(CheckpointError,
                       match=r"no complete checkpoint to resume from: .*step-00000010/training\.json is missing"):
        _resume(run_dir)
    shutil.rmtree(run_dir / "step-00000010")
    with pytest.raises(CheckpointError, match="names step-00000010, which does not exist"):
        _resume(run_dir)


def test_a_damaged_checkpoint_leaves_the_state_untouched(tmp_path):
    _run(tmp_path / "run", steps=(10,))
    folder = tmp_path / "run" / "step-00000010"
    (folder / "model.safetensors").write_bytes(b"\0" * 10)  # the EMA weights are read after the training state
    model, ema, optimizer, scheduler = _state(seed=1)
    before = model.weight.detach().clone()
    with pytest.raises(CheckpointError, match=r"step-00000010/model\.safetensors"):
        load_training_state(folder, model, ema, optimizer, scheduler)
    assert torch.equal(model.weight, before)
