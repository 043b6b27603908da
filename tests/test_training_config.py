"""Experiment configs: strict types, ranges and unknown keys refused on load, each error naming file and key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from midtecg.training.config import ExperimentConfig, load_config

REPO = Path(__file__).resolve().parents[1]


def test_every_shipped_config_loads():
    for path in sorted((REPO / "configs").glob("*.toml")):
        config = load_config(path)
        assert config.name and config.train.steps > 0, path


def test_config_overrides_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "x"\n[train]\nsteps = 10\n')
    config = load_config(path, ["train.batch_size=3", "data.cache=some/folder", "model.s4_variant='s4d'"])
    assert (config.train.steps, config.train.batch_size) == (10, 3)
    assert config.data.cache == "some/folder" and config.model.s4_variant == "s4d"
    with pytest.raises(ValueError, match=r"c\.toml: \[train\] unknown key\(s\) \['batchsize'\]"):
        load_config(path, ["train.batchsize=3"])
    with pytest.raises(ValueError, match=r"c\.toml: unknown key\(s\) \['nmae'\]"):
        load_config(path, ["nmae=3"])
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nsteps = 10\n")
    with pytest.raises(ValueError, match="broken.toml: TOML syntax error"):
        load_config(broken)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.steps=0", r"\[train\] steps = 0: must be at least 1"),
        ("train.steps=2.9", r"\[train\] steps = 2.9: must be an integer"),
        ("train.steps=true", r"\[train\] steps = True: must be an integer"),
        ("train.steps='many'", r"\[train\] steps = 'many': must be an integer"),
        ("train.checkpoint_every=0", r"\[train\] checkpoint_every = 0: must be at least 1"),
        ("train.log_every=0", r"\[train\] log_every = 0: must be at least 1"),
        ("train.val_every=-5", r"\[train\] val_every = -5: must be at least 1"),
        ("train.batch_size=0", r"\[train\] batch_size = 0: must be at least 1"),
        ("train.lr=0", r"\[train\] lr = 0: must be above 0"),
        ("train.lr=nan", r"\[train\] lr = nan: must be a finite number"),
        ("train.ema_decay=1.0", r"\[train\] ema_decay = 1.0: must be below 1"),
        ("train.bf16='no'", r"\[train\] bf16 = 'no': must be true or false \(a boolean\)"),
        ("train.bf16=no", r"\[train\] bf16 = 'no': must be true or false"),
        ("train.bf16=1", r"\[train\] bf16 = 1: must be true or false"),
        ("train.device=0", r"\[train\] device = 0: must be a string"),
        (
            "train.checkpoint_activations='sometimes'",
            r"\[train\] checkpoint_activations must be true, false or \"auto\"",
        ),
        ("conditions.dropout=1.5", r"\[conditions\] dropout = 1.5: must be below 1"),
        ("conditions.dropout=-0.1", r"\[conditions\] dropout = -0.1: must be at least 0"),
        ("conditions.numeric_fields='age'", r"\[conditions\] numeric_fields = 'age': must be a list of str values"),
        ("data.train_folds=5", r"\[data\] train_folds = 5: must be a list of int values"),
        ("data.train_folds='12'", r"\[data\] train_folds = '12': must be a list of int values"),
        ("data.train_folds=[1, 2.5]", r"\[data\] train_folds = \[1, 2.5\]: item 2.5 must be an integer"),
        ("data.train_folds=[1, 11]", r"\[data\] train_folds = \[1, 11\]: item 11 must be one of 1, 2"),
        ("data.train_folds=[]", r"\[data\] train_folds = \[\]: must hold at least one value"),
        ("data.val_folds=[0]", r"\[data\] val_folds = \[0\]: item 0 must be one of 1, 2"),
        ("data.val_folds=[8, 9]", r"\[data\] train_folds and val_folds must be disjoint; both hold \[8\]"),
        ("model.channels=200000", r"\[model\] channels = 200000: must be at most 4096"),
        ("model.blocks=0", r"\[model\] blocks = 0: must be at least 1"),
        ("diffusion.num_steps=1000000000", r"\[diffusion\] num_steps = 1000000000: must be at most 100000"),
        ("diffusion.beta_end=1.5", r"\[diffusion\] beta_end = 1.5: must be below 1"),
        ("objective.mel_weight=-1", r"\[objective\] mel_weight = -1: must be at least 0"),
        ("train=3", r"\[train\] must be a table"),
    ],
)
def test_bad_values_are_refused_naming_file_and_key(tmp_path, override, message):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n')
    started = time.perf_counter()
    with pytest.raises(ValueError, match=rf"x\.toml: {message}"):
        load_config(path, [override])
    assert time.perf_counter() - started < 0.5


def test_good_values_keep_their_types(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(
        "[train]\nlr = 1\nmax_cpu_seconds = 60\nbf16 = false\ncheckpoint_activations = true\n"
        "[data]\ntrain_folds = [1, 2]\nval_folds = []\n"
    )
    config = load_config(path)
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float) and config.train.max_cpu_seconds == 60.0
    assert config.train.bf16 is False and config.train.checkpoint_activations is True
    assert config.data.train_folds == (1, 2) and config.data.val_folds == ()


def test_a_saved_config_reads_back_identically():
    config = load_config(REPO / "configs" / "tiny.toml")
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"run\.json: \[train\] steps = 0"):
        ExperimentConfig.from_dict({**config.to_dict(), "train": {"steps": 0}}, source="run.json")
