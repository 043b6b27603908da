"""Checkpoints: writing them with the sha256 of both weight files, and resuming past damaged checkpoints."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from midtecg.models.files import WEIGHTS_SHA256, CheckpointError, read_model_files
from midtecg.training.checkpoint import (
    TRAINING_SHA256,
    latest_checkpoint,
    load_training_state,
    resume_training_state,
    save_checkpoint,
)

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


@pytest.mark.parametrize(
    "damage",
    [
        "no training.json",
        "truncated training",
        "truncated model",
        "altered training",
        "corrupt training.json",
        "missing folder",
    ],
)
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
    named = {
        "no training.json": "training.json is missing",
        "truncated training": "training.safetensors could not",
        "truncated model": "model.safetensors could not",
        "altered training": "training.safetensors does not match",
        "corrupt training.json": "training.json is not valid JSON",
        "missing folder": "step-00000030, which does not exist",
    }
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
    with pytest.raises(
        CheckpointError, match=r"no complete checkpoint to resume from: .*step-00000010/training\.json is missing"
    ):
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
