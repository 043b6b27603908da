"""deepfake-ecg (PyPI ``deepfakeecg``, an unconditional GAN) as a comparison generator for ``targets.py``: its
shipped generator's ECGs as 12 leads in millivolts at 100 Hz, PTB-XL's form.

The package is optional (not a midtecg dependency). Its weights are read with ``torch.load(...,
weights_only=True)``, so no pickled code runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["DEEPFAKE_FS", "DEEPFAKE_LEADS", "deepfake_to_twelve_leads", "deepfake_microvolts"]

DEEPFAKE_FS = 500
DEEPFAKE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
DEEPFAKE_MICROVOLTS = 6000.0  # the generator's tanh output times this is microvolts


def deepfake_to_twelve_leads(x, fs_out: int = 100):
    """deepfake-ecg output in microvolts, (N, 8, L) leads I, II, V1-V6 at 500 Hz -> (N, 12, L / 5) float32 mV in
    WFDB lead order at ``fs_out`` (aVF from II = aVF + I/2, the rest by :func:`midtecg.data.leads.to_twelve_leads`;
    resampled by :func:`midtecg.data.ptbxl.resample`, as PTB-XL is)."""
    from midtecg.data.leads import MODEL_LEADS, to_twelve_leads
    from midtecg.data.ptbxl import resample

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != len(DEEPFAKE_LEADS):
        raise ValueError(f"deepfake-ecg output: expected (N, 8, L) leads {', '.join(DEEPFAKE_LEADS)}, got {x.shape}")
    leads = dict(zip(DEEPFAKE_LEADS, np.moveaxis(x / 1000.0, 1, 0)))
    leads["aVF"] = leads["II"] - 0.5 * leads["I"]
    x8 = np.stack([leads[name] for name in MODEL_LEADS], axis=1)
    return resample(to_twelve_leads(x8), DEEPFAKE_FS, fs_out)


def deepfake_microvolts(n: int, seed: int, batch_size: int = 16) -> np.ndarray:
    """``n`` ECGs of deepfake-ecg's shipped generator (weights read without pickle code), (N, 8, 5000) uV."""
    import deepfakeecg
    import torch

    weights = Path(deepfakeecg.__file__).parent / "checkpoints" / "g_stat.pt"
    net = deepfakeecg.Generator()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["stat_dict"])
    net.eval()
    rng = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            noise = torch.empty(min(batch_size, n - start), 8, 5000).uniform_(-1, 1, generator=rng)
            out.append((net(noise) * DEEPFAKE_MICROVOLTS).numpy())
    return np.concatenate(out)
