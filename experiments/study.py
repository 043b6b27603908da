"""What the studies in ``experiments/`` share: experiment files with overrides, the prepared-cache check,
processes side by side, the one embedding classifier of a study, the device description and reading a number
out of an evaluation.

Each study script puts this folder on ``sys.path`` and imports it (``import study``); worker processes find it
there too (``multiprocessing`` passes ``sys.path`` to the processes it spawns).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from midtecg.evaluation.verdicts import summary_value

__all__ = [
    "load_experiment",
    "check_cache",
    "run_parallel",
    "classifier_config",
    "train_embedding_classifier",
    "describe_device",
    "metric",
]


def load_experiment(path: Path, overrides: list[str] = ()) -> dict:
    """The experiment file, with ``key=value`` or ``table.key=value`` overrides (values parsed as TOML)."""
    with open(path, "rb") as handle:
        experiment = tomllib.load(handle)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {override!r} must look like key=value or table.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string
        *tables, leaf = key.strip().split(".")
        node = experiment
        for table in tables:
            node = node.setdefault(table, {})
        node[leaf] = value
    return experiment


def check_cache(cache: Path, rate: int, why: str) -> dict:
    """The manifest of a prepared cache at ``rate`` Hz; else exit with a message naming ``--cache`` and ``why``
    the study needs that rate."""
    manifest_path = Path(cache) / "manifest.json"
    if not manifest_path.is_file():
        raise SystemExit(f"--cache {cache}: not a prepared cache (no manifest.json); run `midtecg prepare` first")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("rate") != rate:
        raise SystemExit(f"--cache {cache}: {manifest.get('rate')} Hz; {why} needs {rate} Hz")
    return manifest


def worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_parallel(function, tasks: list[tuple], jobs: int, threads: int) -> list:
    """Run ``function(*task)`` for every task, ``jobs`` at a time, each in its own process with ``threads``
    torch threads (in this process when ``jobs`` is 1)."""
    if not tasks:
        return []
    if jobs <= 1:
        worker_init(threads)
        return [function(*task) for task in tasks]
    with ProcessPoolExecutor(
        jobs, mp_context=mp.get_context("spawn"), initializer=worker_init, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(function, *task) for task in tasks]
        return [future.result() for future in futures]


def classifier_config(experiment: dict, key: str, device: str):
    """A classifier's training settings: ``experiment["evaluate"][key]`` epochs, seed 0."""
    from midtecg.evaluation.classifier import ClassifierTrainConfig

    return ClassifierTrainConfig(
        epochs=experiment["evaluate"][key], device=None if device == "auto" else device, seed=0
    )


def train_embedding_classifier(out: Path, cache: Path, experiment: dict, device: str) -> str:
    """The one embedding classifier every evaluation of a study reuses (``OUT/classifier``), trained on the
    experiment's training folds."""
    from midtecg.evaluation.inputs import load_ecg_set
    from midtecg.evaluation.stages import embedding_classifier

    train = load_ecg_set((cache, list(experiment["data"]["train_folds"])), role="train")
    started = time.perf_counter()
    embedding_classifier(
        train, out / "classifier", classifier_config(experiment, "classifier_epochs", device), False, []
    )
    return f"embedding classifier ready in {time.perf_counter() - started:.0f} s"


def describe_device(device: str) -> str:
    import platform

    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (+ {os.cpu_count()} CPU cores)"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def metric(result: dict, key: str) -> float:
    """A number of an evaluation result (``summary_value``) as a float; NaN when absent or not a number."""
    value = summary_value(result, key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
