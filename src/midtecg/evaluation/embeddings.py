"""ECG embeddings from a classifier trained on real data (Frechet distance, KID, embedding-space privacy).

:func:`embedding_model` trains an :class:`~midtecg.evaluation.classifier.ECGClassifier` on real training data,
or loads it from a cache directory when one trained on the same data with the same configuration is
there. :func:`embed_signals` maps raw-millivolt records (N, leads, L) to pooled penultimate features
(N, D): D = 2 x the last stage's channels (4096 for xresnet1d101, 512 for the small variant) with the
default ``pool="concat"`` (average ++ max over time, what the classification head sees), half that with
``"avg"`` or ``"max"``.

The classifier is stored without pickle: ``weights.safetensors`` (parameters and buffers, including the
standardisation statistics) and ``classifier.json`` (architecture, sampling rate, crop, label names and
free metadata such as the training-data fingerprint and the training configuration).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from midtecg.data.signals import check_signals
from midtecg.evaluation.classifier import (
    ClassifierTrainConfig,
    ECGClassifier,
    map_windows,
    resolve_device,
    sliding_window_starts,
    train_classifier,
)
from midtecg.models.xresnet1d import XResNet1dConfig

__all__ = ["embedding_model", "embed_signals", "save_classifier", "load_classifier", "data_fingerprint"]

FORMAT = "midtecg-ecg-classifier"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "classifier.json"


def save_classifier(model: ECGClassifier, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write ``weights.safetensors`` and ``classifier.json`` into ``directory`` (created if needed).

    ``extra`` is stored under ``"extra"`` in the JSON (it must be JSON-serialisable). Returns the path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        **model.metadata(),
        "history": getattr(model, "history", []),
        "extra": extra or {},
    }
    text = json.dumps(meta, indent=2, allow_nan=True)  # fail before touching the weights if not serialisable
    tmp_weights = directory / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp_weights), metadata={"format": FORMAT})
    os.replace(tmp_weights, directory / WEIGHTS_FILE)
    tmp_cfg = directory / (CONFIG_FILE + ".tmp")
    tmp_cfg.write_text(text)
    os.replace(tmp_cfg, directory / CONFIG_FILE)
    return directory


def _read_meta(directory: Path) -> dict:
    path = directory / CONFIG_FILE
    if not path.is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no saved classifier in {directory} (need {CONFIG_FILE} and {WEIGHTS_FILE})")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a midtecg classifier (format {meta.get('format')!r})")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta.get('version')} is newer than this midtecg ({FORMAT_VERSION})")
    return meta


def load_classifier(directory: str | os.PathLike, device: str | torch.device = "cpu") -> ECGClassifier:
    """Load a classifier written by :func:`save_classifier`; returned in eval mode on ``device``.
    ``model.extra`` holds the stored ``extra`` dict, ``model.history`` the training record."""
    directory = Path(directory)
    meta = _read_meta(directory)
    model = ECGClassifier(
        XResNet1dConfig.from_dict(meta["net"]),
        fs=meta["fs"],
        crop_seconds=meta["crop_seconds"],
        stride_seconds=meta.get("stride_seconds"),
        label_names=meta.get("label_names"),
    )
    state = load_file(str(directory / WEIGHTS_FILE))
    model.load_state_dict(state, strict=True)
    model.history = meta.get("history", [])
    model.extra = meta.get("extra", {})
    return model.to(device).eval()


def data_fingerprint(signals, labels=None) -> str:
    """A short SHA-256 fingerprint of a training set (shapes, dtypes and all bytes)."""
    h = hashlib.sha256()
    for arr in (signals, labels):
        if arr is None:
            continue
        a = np.ascontiguousarray(arr)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:32]


def embedding_model(
    train_signals,
    train_labels,
    cache_dir: str | os.PathLike | None = None,
    config: ClassifierTrainConfig | None = None,
    val=None,
    progress: bool = True,
    label_names: Sequence[str] | None = None,
    retrain: bool = False,
) -> ECGClassifier:
    """The classifier that defines the embedding space, trained on real training data.

    With ``cache_dir``, a classifier saved there is reused when its stored training-data fingerprint and
    training configuration match; otherwise (or with ``retrain=True``) one is trained and saved there.
    """
    cfg = config or ClassifierTrainConfig()
    fingerprint = data_fingerprint(
        np.asarray(train_signals, dtype=np.float32), np.asarray(train_labels, dtype=np.float32)
    )
    cfg_dict = cfg.to_dict()
    cfg_dict.pop("device", None)  # the same model may be trained on GPU and used on CPU
    if cache_dir is not None and not retrain:
        directory = Path(cache_dir)
        try:
            meta = _read_meta(directory)
        except FileNotFoundError:
            meta = None
        if meta is not None:
            extra = meta.get("extra", {})
            if extra.get("data_fingerprint") == fingerprint and extra.get("train_config") == cfg_dict:
                return load_classifier(directory, device=resolve_device(cfg.device))
            warnings.warn(
                f"classifier cached in {directory} was trained on other data or with another "
                "configuration; retraining and overwriting it",
                stacklevel=2,
            )
    model = train_classifier(
        train_signals, train_labels, val=val, config=cfg, progress=progress, label_names=label_names
    )
    if cache_dir is not None:
        save_classifier(model, cache_dir, extra={"data_fingerprint": fingerprint, "train_config": cfg_dict})
    return model


@torch.no_grad()
def embed_signals(
    model: ECGClassifier,
    signals,
    batch_size: int = 256,
    pool: str = "concat",
    crop_seconds: float | None = None,
    stride_seconds: float | None = None,
    amp: bool = True,
) -> np.ndarray:
    """Embeddings (N, D) float32 of raw-millivolt records (N, leads, L).

    By default each whole record goes through the (fully convolutional) network and is pooled over its
    full length. With ``crop_seconds`` the record is cut in sliding windows (stride ``stride_seconds``,
    default half a window) as at prediction time and the window embeddings are averaged.
    """
    x = check_signals(signals)
    length = x.shape[-1]
    if crop_seconds is None:
        window, starts = length, np.zeros(1, dtype=np.int64)
    else:
        window = min(int(round(crop_seconds * model.fs)), length)
        stride_seconds = crop_seconds / 2 if stride_seconds is None else stride_seconds
        starts = sliding_window_starts(length, window, max(1, int(round(stride_seconds * model.fs))))
    per_window = map_windows(model, x, window, starts, batch_size, amp, lambda w: model.embed(w, pool=pool))
    return per_window.mean(dim=1).numpy()
