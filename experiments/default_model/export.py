"""Ship a checkpoint of the built-in model's run as ``src/midtecg/assets/default_model``.

    python experiments/default_model/export.py runs/default-model --sampler heun --steps 10

Copies the sampling weights (``model.safetensors``, the EMA) and ``config.json`` of the run's newest
checkpoint (or of the checkpoint folder given), and in ``config.json``:

- names the default sampler (``sampling``: what ``midtecg generate`` uses without ``--sampler``);
- records where the weights came from (``training_run``: step, CPU seconds, threads) from ``training.json``;
- puts the preset's own cache and run paths back in the experiment config (``configs/default-model.toml``),
  so no path of the machine that trained it ships in the wheel.

The weights' sha256 is checked on the way (``midtecg.models.files.read_model_files``) and written again.
Files are written atomically; the model card is not touched (rewrite it from the measurements).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
from pathlib import Path

from midtecg.files import atomic_write_bytes, atomic_write_text
from midtecg.models.files import LATEST, WEIGHTS_SHA256, latest_pointer, read_json, read_model_files

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "src" / "midtecg" / "assets" / "default_model"
PRESET = REPO / "configs" / "default-model.toml"


def export(source: Path, target: Path = TARGET, sampler: str | None = None, steps: int | None = None) -> Path:
    if source.is_dir() and (source / LATEST).is_file():
        source = source / latest_pointer(source)
    config, _ = read_model_files(source)  # checks the sizes and the weights against their sha256
    weights = (source / "model.safetensors").read_bytes()
    training = read_json(source / "training.json") if (source / "training.json").is_file() else {}
    with PRESET.open("rb") as handle:
        preset = tomllib.load(handle)
    config["experiment"]["data"]["cache"] = preset["data"]["cache"]
    config["experiment"]["out_dir"] = preset["out_dir"]
    config["training_run"] = {
        "step": training.get("step"),
        "cpu_s": round(float(training.get("cpu_s", 0.0)), 1),
        "threads": config["experiment"]["train"].get("threads"),
    }
    if sampler is not None:
        config["sampling"] = {"sampler": sampler, **({"steps": steps} if steps is not None else {})}
    config[WEIGHTS_SHA256] = hashlib.sha256(weights).hexdigest()
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target / "model.safetensors", weights)
    atomic_write_text(target / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    read_model_files(target)
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a run folder (its newest checkpoint) or a checkpoint folder")
    parser.add_argument("--sampler", help="the default sampler to record (e.g. heun, dpm++2m)")
    parser.add_argument("--steps", type=int, help="its number of steps")
    parser.add_argument("--target", type=Path, default=TARGET, help=f"model folder to write (default {TARGET})")
    args = parser.parse_args(argv)
    source = export(args.source, args.target, args.sampler, args.steps)
    print(f"exported {source} to {args.target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
