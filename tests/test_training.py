"""Training: config parsing, the loss falls on real data, exact resume after a kill, distributed sync, and the
step: no host reads of device values, non-finite losses reported at their step, EMA, compile."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from host_reads import HostRead, NoHostReads
from midtecg.data.cache import prepare
from midtecg.diffusion import NoiseSchedule
from midtecg.losses import ObjectiveConfig
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.training.config import ExperimentConfig, load_config
from midtecg.training.loop import LOG_COLUMNS, batch_indices, step_generator, train
from midtecg.training.step import TrainStep, activation_checkpointing, ema_weights, make_optimizer, update_ema

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "ptbxl"


@pytest.fixture(scope="session")
def fixture_cache(tmp_path_factory) -> Path:
    return prepare(FIXTURE, tmp_path_factory.mktemp("cache") / "ptbxl-100hz", progress=False)


def tiny_config(cache: Path, out: Path, **train) -> ExperimentConfig:
    config = load_config(REPO / "configs" / "tiny.toml")
    config.data.cache = str(cache)
    config.out_dir = str(out)
    config.model.channels, config.model.blocks = 16, 2
    config.train.device = "cpu"
    config.train.threads = 1
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def test_batches_cover_each_epoch_once_and_ranks_differ():
    n, batch = 10, 3
    first_epoch = np.concatenate([batch_indices(s, n, batch, seed=1) for s in range(3)])[:9]
    assert len(set(first_epoch.tolist())) == 9
    assert not np.array_equal(
        batch_indices(0, n, batch, 1, rank=0, world=2), batch_indices(0, n, batch, 1, rank=1, world=2)
    )
    assert np.array_equal(batch_indices(5, n, batch, 1), batch_indices(5, n, batch, 1))


def test_loss_falls_on_real_data(fixture_cache, tmp_path):
    config = tiny_config(
        fixture_cache,
        tmp_path / "run",
        steps=300,
        batch_size=8,
        log_every=50,
        val_every=150,
        checkpoint_every=300,
        val_batches=2,
    )
    train(config, progress=False)
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    train_loss = log["loss"].to_numpy()
    val = log["val_loss"].dropna().to_numpy()
    assert train_loss[-1] < 0.75 * train_loss[0], train_loss  # about 0.99 -> 0.65 in 300 steps
    assert val[-1] < val[0], val
    # The run folder is a loadable generator.
    checkpoint = tmp_path / "run" / "step-00000300"
    assert json.loads((checkpoint / "config.json").read_text())["model"]["channels"] == 16


def _final_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = load_file(checkpoint / "training.safetensors")
    state.update({f"ema.{k}": v for k, v in load_file(checkpoint / "model.safetensors").items()})
    return {k: v for k, v in state.items() if not k.startswith("rng.")}


def test_resume_after_kill_is_exact(fixture_cache, tmp_path):
    steps = 40
    reference = tiny_config(
        fixture_cache, tmp_path / "reference", steps=steps, checkpoint_every=10, log_every=10, val_every=1000
    )
    train(reference, progress=False)

    killed_dir = tmp_path / "killed"
    config_path = tmp_path / "killed.json"
    config_path.write_text(
        json.dumps(
            tiny_config(
                fixture_cache, killed_dir, steps=steps, checkpoint_every=10, log_every=10, val_every=1000
            ).to_dict()
        )
    )
    script = (
        "import json, sys; from midtecg.training.config import ExperimentConfig; from midtecg.training.loop import train;"
        f"train(ExperimentConfig.from_dict(json.load(open({str(config_path)!r}))), progress=False)"
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 300
    while time.time() < deadline:
        pointer = killed_dir / "latest.json"
        if pointer.exists() and json.loads(pointer.read_text())["step"] >= 20:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_at = json.loads((killed_dir / "latest.json").read_text())["step"]
    assert 20 <= stopped_at < steps, "the run should have been killed mid-way"

    resumed = tiny_config(fixture_cache, killed_dir, steps=steps, checkpoint_every=10, log_every=10, val_every=1000)
    with pytest.raises(FileExistsError):
        train(resumed, progress=False)
    train(resumed, resume=True, progress=False)
    expected = _final_state(tmp_path / "reference" / f"step-{steps:08d}")
    actual = _final_state(killed_dir / f"step-{steps:08d}")
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


DDP_WORKER = """
import json, os, sys
import torch
from midtecg.training.config import ExperimentConfig
from midtecg.training import loop

torch.distributed.init_process_group(backend="gloo")  # the worker's own group: train() joins it, leaves it open
rank = int(os.environ["RANK"])
loop.train(ExperimentConfig.from_dict(json.load(open(sys.argv[1]))), progress=False)  # checks sync at checkpoints
torch.manual_seed(0)
probe = torch.nn.Linear(3, 1)
loop.check_in_sync(probe)
if rank == 1:
    probe.weight.data += 1e-3
try:
    loop.check_in_sync(probe)
    detected = False
except RuntimeError:
    detected = True
with open(sys.argv[2] + f".{rank}", "w") as handle:
    json.dump({"detected": detected}, handle)
torch.distributed.barrier()
torch.distributed.destroy_process_group()
# gloo can still abort in the interpreter's teardown under load ("terminate called without an active
# exception", 2 of about 10 runs on a busy 2-core machine, after everything above had finished): the work
# is done and checked by the files written above, so leave without running the C++ static destructors.
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)
"""


def test_two_process_gloo_training_stays_in_sync(fixture_cache, tmp_path):
    config = tiny_config(fixture_cache, tmp_path / "ddp", steps=6, checkpoint_every=3, log_every=3, val_every=1000)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "worker.py").write_text(DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:  # a free port, so concurrent test runs do not meet in one rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={port}",
            str(tmp_path / "worker.py"),
            str(tmp_path / "config.json"),
            str(tmp_path / "result"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):  # a deliberate divergence is detected on every rank
        assert json.loads((tmp_path / f"result.{rank}").read_text())["detected"]
    assert (tmp_path / "ddp" / "step-00000006" / "model.safetensors").is_file()
    assert not list(tmp_path.glob("ddp-*")), "only rank 0 writes"


def test_training_without_validation_folds(fixture_cache, tmp_path):
    config = tiny_config(fixture_cache, tmp_path / "run", steps=2, log_every=1, val_every=1, checkpoint_every=2)
    config.data.val_folds = ()
    checkpoint = train(config, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert checkpoint.name.endswith("2") and [r["val_loss"] for r in rows] == ["", ""]


PAPER_PRESETS = ("sssd-ecg", "midt-ecg", "midt-ecg-age", "midt-ecg-sex", "midt-ecg-demographics")


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_paper_presets_keep_the_published_recipe(name):
    """The recipe options are off in the paper presets (method.md sections 1-4): millivolts, linear betas
    not rescaled, epsilon prediction, the reference's N(0, 1) label embedding, audiotools' mel log order."""
    config = load_config(REPO / "configs" / f"{name}.toml")
    assert config.data.scaling == "none"
    assert (config.diffusion.num_steps, config.diffusion.kind, config.diffusion.prediction) == (200, "linear", "eps")
    assert not config.diffusion.zero_terminal_snr
    assert (config.diffusion.beta_start, config.diffusion.beta_end) == (1e-4, 0.02)
    assert config.model.cond_init == "normal" and config.objective.mel_log_order == "clamp_first"
    assert config.train.max_cpu_seconds == 0
    assert config.objective.kind == ("eps" if name == "sssd-ecg" else "midt")


def test_mel_filters_follow_the_cache_rate(tmp_path, monkeypatch):
    """A 500 Hz cache is trained with 500 Hz mel filters (the objective's sample rate comes from the
    cache's manifest), and config.json records the objective that was used."""
    cache = prepare(FIXTURE, tmp_path / "cache500", rate=500, progress=False)
    rates = []
    import midtecg.losses.objective as objective_module

    real = objective_module.multi_resolution_mel_loss

    def spy(*args, **kwargs):
        rates.append(kwargs["fs"])
        return real(*args, **kwargs)

    monkeypatch.setattr(objective_module, "multi_resolution_mel_loss", spy)
    config = tiny_config(
        cache, tmp_path / "run", steps=1, log_every=1, checkpoint_every=1, batch_size=2, check_samples=0
    )
    config.model.channels, config.model.blocks = 8, 1
    config.data.val_folds = ()
    config.objective = dataclasses.replace(config.objective, kind="midt")
    checkpoint = train(config, progress=False)
    assert rates == [500.0]
    saved = json.loads((checkpoint / "config.json").read_text())
    assert saved["objective"]["fs"] == 500.0 and saved["signal"]["fs"] == 500


def test_cpu_budget_stops_checkpoints_and_resumes(fixture_cache, tmp_path):
    config = tiny_config(
        fixture_cache,
        tmp_path / "run",
        steps=100_000,
        log_every=10_000,
        val_every=10_000,
        checkpoint_every=10_000,
        max_cpu_seconds=1.5,
        check_samples=0,
    )
    config.model.channels, config.model.blocks = 8, 1
    checkpoint = train(config, progress=False)
    meta = json.loads((checkpoint / "training.json").read_text())
    assert 1.5 <= meta["cpu_s"] < 10 and 0 < meta["step"] < 100_000
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert int(rows[-1]["step"]) == meta["step"] and float(rows[-1]["cpu_s"]) == pytest.approx(meta["cpu_s"])
    # resuming a run whose budget is spent does nothing
    assert train(config, resume=True, progress=False) == checkpoint
    assert json.loads((tmp_path / "run" / "latest.json").read_text())["step"] == meta["step"]
    # a larger budget continues from there
    config.train.max_cpu_seconds = meta["cpu_s"] + 1.0
    longer = json.loads((train(config, resume=True, progress=False) / "training.json").read_text())
    assert longer["step"] > meta["step"] and longer["cpu_s"] >= meta["cpu_s"] + 1.0


def test_lr_factor_warms_up_holds_then_cools_down():
    from midtecg.training.step import lr_factor

    assert [lr_factor(s, 4, 0, 10) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [lr_factor(s, 0, 6, 10) for s in (5, 6, 7, 9)] == [1.0, 1.0, 0.75, 0.25]
    assert lr_factor(1, 4, 1, 5) == pytest.approx(0.5 * 1.0)  # both: warm-up times cool-down
    assert lr_factor(2, 4, 1, 5) == pytest.approx(0.75 * 0.75)
    assert lr_factor(20, 0, 6, 10) == 0.0  # never negative


def test_a_budget_run_can_be_cooled_down_on_resume(fixture_cache, tmp_path):
    """The recipe for a CPU-budget run: resume it with more steps and the decay starting where it stopped."""
    config = tiny_config(
        fixture_cache, tmp_path / "run", steps=6, warmup_steps=0, log_every=1, val_every=1000, check_samples=0
    )
    config.model.channels, config.model.blocks = 8, 1
    train(config, progress=False)
    config.train.steps, config.train.lr_decay_start = 10, 6
    train(config, resume=True, progress=False)
    lr = {int(r["step"]): float(r["lr"]) for r in csv.DictReader((tmp_path / "run" / "log.csv").open())}
    # the log's lr at step k is the rate of the step after it, lr_factor(k)
    assert [lr[s] / config.train.lr for s in range(5, 11)] == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.25, 0.0])


def test_a_short_run_says_it_is_far_from_the_data(fixture_cache, tmp_path):
    """The issue's case: a few steps of configs/tiny.toml give noise, and the log now says so."""
    config = tiny_config(
        fixture_cache, tmp_path / "run", steps=20, log_every=10, val_every=1000, checkpoint_every=20, batch_size=4
    )
    config.model.channels, config.model.blocks = 8, 1
    train(config, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert rows[0]["warning"] == "" and rows[0]["val_loss"] == ""  # no validation at step 10
    last = rows[-1]
    assert "far from the data" in last["warning"] and "sample amplitude" in last["warning"]
    assert float(last["val_loss"]) > float(last["val_reference"]) and float(last["sample_amplitude_ratio"]) > 3


def test_an_old_log_is_rewritten_with_the_new_columns_on_resume(fixture_cache, tmp_path):
    config = tiny_config(
        fixture_cache, tmp_path / "run", steps=2, log_every=1, val_every=1000, checkpoint_every=2, check_samples=0
    )
    config.model.channels, config.model.blocks = 8, 1
    train(config, progress=False)
    log = tmp_path / "run" / "log.csv"
    old = [
        "step,loss,mse_loss,mel_loss,lr,val_loss,steps_per_s,elapsed_s",
        "1,0.9,0.9,,0.001,,1.0,1.0",
        "2,0.8,0.8,,0.001,0.95,1.0,2.0",
    ]
    log.write_text("\n".join(old) + "\n")
    config.train.steps = 3
    train(config, resume=True, progress=False)
    rows = list(csv.DictReader(log.open()))
    assert list(rows[0]) == list(LOG_COLUMNS) and [r["step"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["val_loss"] == "0.95" and rows[1]["warning"] == ""


def test_resume_past_a_damaged_checkpoint_is_exact_and_logs_each_step_once(fixture_cache, tmp_path, capsys):
    config = tiny_config(
        fixture_cache, tmp_path / "run", steps=20, log_every=5, val_every=1000, checkpoint_every=10, check_samples=0
    )
    config.model.channels, config.model.blocks = 8, 1
    train(config, progress=False)
    newest = tmp_path / "run" / "step-00000020"
    weights = newest / "training.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    train(config, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "step-00000020/training.safetensors could not be read" in err
    assert "step-00000010 is the newest complete checkpoint" in err
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert [r["step"] for r in rows] == ["5", "10", "15", "20"]
    broken = load_file(tmp_path / "run" / "broken-step-00000020" / "model.safetensors")
    again = load_file(newest / "model.safetensors")
    assert broken.keys() == again.keys() and all(torch.equal(broken[k], again[k]) for k in broken)


def test_resume_refuses_rather_than_starting_over(fixture_cache, tmp_path):
    config = tiny_config(
        fixture_cache, tmp_path / "run", steps=2, log_every=1, val_every=1000, checkpoint_every=2, check_samples=0
    )
    config.model.channels, config.model.blocks = 8, 1
    train(config, progress=False)
    (tmp_path / "run" / "step-00000002" / "training.json").unlink()
    log = (tmp_path / "run" / "log.csv").read_text()
    with pytest.raises(ValueError, match=r"no complete checkpoint to resume from: .*training\.json is missing"):
        train(config, resume=True, progress=False)
    assert (tmp_path / "run" / "log.csv").read_text() == log
    with pytest.raises(FileExistsError):
        train(config, progress=False)


@pytest.mark.parametrize(
    "sets",
    [
        {"data.scaling": "std"},
        {"diffusion.prediction": "v", "diffusion.zero_terminal_snr": True},
        {"diffusion.prediction": "flow", "objective.kind": "midt"},
    ],
    ids=["scaling", "v-ztsnr", "flow-midt"],
)
def test_each_option_trains_and_is_stored_for_sampling(fixture_cache, tmp_path, sets):
    config = tiny_config(
        fixture_cache,
        tmp_path / "run",
        steps=30,
        log_every=10,
        val_every=30,
        checkpoint_every=30,
        batch_size=4,
        check_samples=2,
    )
    config.model.channels, config.model.blocks = 8, 1
    config.objective = dataclasses.replace(config.objective, mel_scales="small")
    for key, value in sets.items():
        section, leaf = key.split(".")
        setattr(config, section, dataclasses.replace(getattr(config, section), **{leaf: value}))
    checkpoint = train(config, progress=False)
    saved = json.loads((checkpoint / "config.json").read_text())
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert np.isfinite(log["loss"]).all() and np.isfinite(log["val_loss"].dropna()).all()
    assert np.isfinite(log["sample_amplitude_ratio"].dropna()).all()
    if "data.scaling" in sets:
        from midtecg.data.cache import load_prepared
        from midtecg.data.leads import to_model_leads

        signals = to_model_leads(load_prepared(fixture_cache, split=list(config.data.train_folds)).signals)
        expected = signals.astype(np.float64).std(axis=(0, 2))
        np.testing.assert_allclose(saved["signal"]["lead_scale"], expected, rtol=1e-4)
        assert "parameterization" not in saved
    else:
        assert "lead_scale" not in saved["signal"]
        assert saved["parameterization"]["prediction"] == sets["diffusion.prediction"]
        assert saved["schedule"]["zero_terminal_snr"] == sets.get("diffusion.zero_terminal_snr", False)


# ---- the step ---------------------------------------------------------------------------------------------

TINY = SSSDConfig(
    channels=8, blocks=2, length=64, state_size=8, step_embed_dim=16, step_hidden=32, null_conditions=True
)


def tiny_trainer(objective: str = "eps", **options) -> TrainStep:
    torch.manual_seed(0)
    model = SSSDECG(TINY)
    ema = SSSDECG(TINY)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    optimizer = make_optimizer(model, 1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 3))
    kind = dict(kind="midt", mel_scales="small", mel_weight=0.2) if objective == "midt" else dict(kind="eps")
    return TrainStep(
        model,
        optimizer,
        scheduler,
        NoiseSchedule(),
        ObjectiveConfig(**kind),
        ema=ema,
        ema_decay=0.99,
        steps=50,
        grad_clip=1.0,
        log_capacity=10,
        **options,
    )


def tiny_batch(step: int, bad: bool = False):
    g = torch.Generator().manual_seed(step)
    x0 = 0.3 * torch.randn(4, 8, TINY.length, generator=g)
    if bad:
        x0[1, 2, 3] = float("nan")
    conditions = {"labels": (torch.rand(4, 71, generator=g) < 0.1).float()}
    draws = step_generator(0, step, 0, x0.device)
    t = torch.randint(0, 200, (4,), generator=draws)
    noise = torch.randn(x0.shape, generator=draws)
    return x0, conditions, t, noise, {"labels": torch.rand(4, generator=draws) < 0.3}


@pytest.mark.parametrize("objective", ["eps", "midt"])
def test_a_step_never_reads_device_values_on_the_host(objective):
    trainer = tiny_trainer(objective)
    with NoHostReads():
        for step in range(3):  # the first step builds the kernel constants and the log
            trainer(step, *tiny_batch(step))
    means = trainer.read_log()
    assert set(means) == ({"mse", "mel", "loss"} if objective == "midt" else {"mse", "loss"})
    assert all(math.isfinite(v) for v in means.values())
    # the check catches each way of reading a value
    trainer(3, *tiny_batch(3))
    loss = torch.ones(2).sum()
    for read in (
        lambda: loss.item(),
        lambda: float(loss),
        lambda: bool(loss > 0),
        lambda: loss.tolist(),
        lambda: torch.ones(3).nonzero(),
        lambda: trainer.read_log(),
    ):
        with pytest.raises(HostRead), NoHostReads():
            read()


def test_log_means_are_the_per_step_losses():
    trainer = tiny_trainer()
    losses = []
    for step in range(4):
        loss = trainer.forward(step, *tiny_batch(step))
        losses.append(loss.item())
        trainer.backward(loss)
        trainer.update(step)
    assert trainer.read_log()["loss"] == pytest.approx(sum(losses) / 4, rel=1e-12)
    assert trainer.read_log() == {}  # the window starts again
    trainer(4, *tiny_batch(4))
    assert trainer.read_log()["loss"] > 0


def test_a_non_finite_loss_is_reported_at_its_step():
    trainer = tiny_trainer()
    for step in range(5):
        trainer(step, *tiny_batch(step, bad=step == 2))
    with pytest.raises(FloatingPointError, match="loss became nan at step 2"):
        trainer.check_log()
    with pytest.raises(FloatingPointError, match="at step 2"):
        trainer.read_log()
    fresh = tiny_trainer()
    for step in range(10):
        fresh(step, *tiny_batch(step))
    with pytest.raises(RuntimeError, match="read_log"):  # the log holds log_capacity steps
        fresh(10, *tiny_batch(10))


def test_ema_weight_table_and_update():
    for decay, steps in ((0.999, 100_000), (0.995, 2_000), (0.999, 40)):
        table = ema_weights(decay, steps, torch.device("cpu"))
        assert table.dtype == torch.float32 and len(table) <= min(steps, 10 / (1 - decay)) + 1
        for step in (0, 7, 8, 39, 500, 1990, 8989, 8990, 8991, 50_000, steps - 1):
            if step < steps:  # the table ends where the weight stops changing
                expected = torch.tensor(1.0 - min(decay, (1 + step) / (10 + step))).float()
                assert table[min(step, len(table) - 1)] == expected, (decay, step)
    torch.manual_seed(1)
    model, ema = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    before = [p.detach().clone() for p in ema.parameters()]
    w = ema_weights(0.999, 100, torch.device("cpu"))[3]
    update_ema(ema, model, w)
    w = w.item()
    for old, new, target in zip(before, ema.parameters(), model.parameters()):
        assert torch.allclose(new, torch.lerp(old, target.detach(), w), atol=1e-7)


def test_activation_checkpointing_setting(tmp_path):
    cpu = torch.device("cpu")
    assert activation_checkpointing("auto", cpu, SSSDConfig(), 64) is False
    assert (
        activation_checkpointing(True, cpu, TINY, 1) is True and activation_checkpointing(False, cpu, TINY, 1) is False
    )
    path = tmp_path / "c.toml"
    path.write_text("[train]\ncheckpoint_activations = true\n")
    assert load_config(path).train.checkpoint_activations is True
    assert load_config(path, ["train.checkpoint_activations='auto'"]).train.checkpoint_activations == "auto"
    with pytest.raises(ValueError, match="checkpoint_activations"):
        load_config(path, ["train.checkpoint_activations='sometimes'"])


@pytest.mark.slow
def test_compiled_step_matches_the_eager_step():
    """train.compile: inductor on the CPU compiles the forward and loss; the same losses as eager."""
    logs = []
    for compile in (False, True):
        torch._dynamo.reset()
        trainer = tiny_trainer(compile=compile)
        for step in range(3):
            trainer(step, *tiny_batch(step))
            logs.append(trainer.read_log()["loss"])
    torch._dynamo.reset()
    eager, compiled = logs[:3], logs[3:]
    assert compiled == pytest.approx(eager, rel=1e-4)
