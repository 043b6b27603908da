"""Tiny models for tests that need a trained checkpoint (I/O, generation, evaluation; not quality).

:func:`train_tiny` trains ``configs/tiny.toml`` at the smallest size (8 channels, 1 block, batch 4, CPU, one
thread, no validation) for a few steps, with any further ``section.key=value`` overrides.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = (
    "model.channels=8",
    "model.blocks=1",
    "train.batch_size=4",
    "train.device='cpu'",
    "train.threads=1",
    "train.val_every=1000",
)


def train_tiny(cache: Path, out: Path, *overrides: str, steps: int = 2) -> Path:
    """The checkpoint of ``configs/tiny.toml`` trained ``steps`` steps on ``cache`` into ``out``."""
    from midtecg.training.config import load_config
    from midtecg.training.loop import train

    sets = [f"data.cache={json.dumps(str(cache))}", f"out_dir={json.dumps(str(out))}", *TINY, f"train.steps={steps}"]
    return train(load_config(REPO / "configs" / "tiny.toml", [*sets, *overrides]), progress=False)
