"""The built-in model: shipped with the package, loadable without pickle, generates openable ECGs."""

from __future__ import annotations

import json

import neurokit2 as nk
import numpy as np
import wfdb

from midtecg.cli import main
from midtecg.generate import DEFAULT_MODEL
from midtecg.sample import load_generator

MAX_BYTES = 25 * 2**20


def test_default_model_is_small_and_documented():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL.iterdir()}
    assert {"config.json", "model.safetensors", "MODEL_CARD.md"} <= set(files)
    assert sum(files.values()) <= MAX_BYTES
    config = json.loads((DEFAULT_MODEL / "config.json").read_text())
    assert config["conditions"]["mode"] == "numeric" and config["model"]["null_conditions"]
    assert config["experiment"]["objective"]["kind"] == "midt"
    generator = load_generator(DEFAULT_MODEL, device="cpu")
    assert generator.fs == 100 and generator.length == 1000 and generator.supports_guidance


def test_cli_generates_wfdb_records_and_plots_with_the_default_model(tmp_path):
    out = tmp_path / "demo"
    assert (
        main(
            [
                "generate",
                "-n",
                "2",
                "--labels",
                "NORM",
                "--age",
                "55",
                "--sex",
                "male",
                "--out",
                str(out),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    records = sorted((out / "wfdb").glob("*.hea"))
    assert len(records) == 2
    for header in records:
        signal, fields = wfdb.rdsamp(str(header.with_suffix("")))
        assert signal.shape == (1000, 12) and fields["fs"] == 100
        assert fields["sig_name"][:3] == ["I", "II", "III"] and "labels: NORM" in fields["comments"]
        assert np.isfinite(signal).all() and 0.05 < np.abs(signal).max() < 20
        cleaned = nk.ecg_clean(signal[:, 1], sampling_rate=100)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=100)
        assert len(info["ECG_R_Peaks"]) >= 3  # neurokit2 finds beats in lead II
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 50_000 for p in plots)
    assert (out / "conditions.csv").read_text().splitlines()[0].startswith("name")
