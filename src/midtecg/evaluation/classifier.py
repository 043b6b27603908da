"""The downstream ECG classifier: an XResNet1d trained on raw millivolts and scored with sliding windows.

The recipe is the PTB-XL benchmark's (method.md section 6): a 1-D XResNet trained with binary cross-entropy on
random ``crop_seconds`` (2.5 s) crops, AdamW with a one-cycle (or cosine) learning-rate schedule, and evaluated
with sliding windows whose sigmoid outputs are aggregated by their **maximum** (:func:`predict`). Inputs are raw
millivolts: :class:`ECGClassifier` stores the training set's mean and standard deviation as buffers and
standardises inside ``forward`` (the benchmark standardises with one global train-set mean and std;
``standardize="per_lead"`` uses one pair per lead instead).

The utility experiments (:mod:`~midtecg.evaluation.utility`) and the embedding classifier
(:mod:`~midtecg.evaluation.embeddings`) are built on it. On CUDA, training and inference use bf16 autocast; on
CPU, float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from midtecg.data.errors import DataError
from midtecg.data.signals import check_signals
from midtecg.evaluation.auc import macro_auc
from midtecg.models.xresnet1d import (
    XResNet1d,
    XResNet1dConfig,
    xresnet1d50,
    xresnet1d101,
    xresnet1d_small,
)

__all__ = [
    "ClassifierTrainConfig",
    "ECGClassifier",
    "build_classifier",
    "train_classifier",
    "predict",
    "map_windows",
    "sliding_window_starts",
    "check_labels",
    "resolve_device",
]

MODEL_PRESETS = {
    "small": xresnet1d_small,
    "xresnet1d50": xresnet1d50,
    "xresnet1d101": xresnet1d101,
}


# --------------------------------------------------------------------------------------------------------
# configuration and the model wrapper
# --------------------------------------------------------------------------------------------------------


@dataclass
class ClassifierTrainConfig:
    """How :func:`train_classifier` trains (defaults follow the PTB-XL benchmark where it says)."""

    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-2
    """Peak learning rate of AdamW (one-cycle) or the starting one (cosine)."""
    weight_decay: float = 1e-2
    """AdamW weight decay; BatchNorm parameters and biases are not decayed."""
    schedule: str = "onecycle"
    """``onecycle`` (30 % warm-up, cosine annealing) or ``cosine`` (cosine decay from ``lr``)."""
    crop_seconds: float = 2.5
    fs: float = 100.0
    stride_seconds: float | None = None
    """Stride of the test-time sliding windows; ``None`` = half a crop."""
    model: str = "small"
    """``small``, ``xresnet1d50`` or ``xresnet1d101``."""
    seed: int = 0
    device: str | None = None
    """``None`` picks CUDA when available, else CPU."""
    standardize: str = "global"
    """``global`` (one mean/std, as the benchmark), ``per_lead`` or ``none``."""
    eval_batch_size: int = 256
    """Windows per forward pass at prediction time."""
    keep_best: bool = True
    """With a validation set, return the weights of the epoch with the best validation macro AUC."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    head_dropout: float | None = None
    """Override the preset's dropout before the output layer."""

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise ValueError(f"model must be one of {sorted(MODEL_PRESETS)}, got {self.model!r}")
        if self.schedule not in ("onecycle", "cosine"):
            raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {self.schedule!r}")
        if self.standardize not in ("global", "per_lead", "none"):
            raise ValueError(f"standardize must be 'global', 'per_lead' or 'none', got {self.standardize!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        if self.crop_seconds <= 0 or self.fs <= 0:
            raise ValueError("crop_seconds and fs must be positive")

    @property
    def crop_samples(self) -> int:
        return int(round(self.crop_seconds * self.fs))

    def to_dict(self) -> dict:
        return asdict(self)


class ECGClassifier(nn.Module):
    """XResNet1d on raw millivolts: standardises with stored train-set statistics, then classifies.

    ``forward(x (B, leads, L) mV) -> logits (B, n_classes)``; ``embed(x)`` -> pooled features.
    ``fs``, ``crop_seconds`` and ``stride_seconds`` are the defaults :func:`predict` uses.
    """

    def __init__(
        self,
        net_config: XResNet1dConfig,
        fs: float = 100.0,
        crop_seconds: float = 2.5,
        stride_seconds: float | None = None,
        label_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.net_config = net_config
        self.net = XResNet1d(net_config)
        self.fs = float(fs)
        self.crop_seconds = float(crop_seconds)
        self.stride_seconds = None if stride_seconds is None else float(stride_seconds)
        if label_names is not None and len(label_names) != net_config.n_classes:
            raise ValueError(f"{len(label_names)} label names for {net_config.n_classes} classes")
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.register_buffer("mean", torch.zeros(net_config.in_leads))
        self.register_buffer("std", torch.ones(net_config.in_leads))
        self.history: list[dict] = []

    def set_standardization(self, mean, std) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        n = self.net_config.in_leads
        mean = mean.expand(n) if mean.numel() == 1 else mean
        std = std.expand(n) if std.numel() == 1 else std
        if mean.shape != (n,) or std.shape != (n,):
            raise ValueError(f"mean/std need 1 or {n} values")
        if not torch.all(std > 0):
            raise ValueError("standard deviations must be positive")
        self.mean.copy_(mean)
        self.std.copy_(std)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:, None].to(x.dtype)) / self.std[:, None].to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x))

    def embed(self, x: torch.Tensor, pool: str = "concat") -> torch.Tensor:
        return self.net.embed(self.standardize(x), pool=pool)

    @property
    def embedding_dim(self) -> int:
        return self.net_config.embedding_dim

    def metadata(self) -> dict:
        """JSON-serialisable description (everything but the weights)."""
        return {
            "net": self.net_config.to_dict(),
            "fs": self.fs,
            "crop_seconds": self.crop_seconds,
            "stride_seconds": self.stride_seconds,
            "label_names": self.label_names,
        }


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device | None) -> torch.device:
    """:func:`midtecg.device.resolve_device` (``auto`` included; a missing GPU is one clear error)."""
    from midtecg.device import resolve_device as resolve

    return resolve(device)


def check_labels(labels, n: int, name: str = "labels") -> np.ndarray:
    """``labels`` as (n, n_classes) float32 0/1 (a 1-D array is one class); a ``DataError`` naming ``name``
    otherwise."""
    y = np.asarray(labels)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise DataError(name, f"expected (N={n}, n_classes), got shape {np.asarray(labels).shape}")
    y = y.astype(np.float32)
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError(name, "labels must be 0/1")
    return y


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def sliding_window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start indices of windows of ``window`` samples every ``stride`` samples, the last one flush with
    the end of the signal (added when the stride does not land on it). One window when ``length <=
    window``."""
    if window < 1 or stride < 1:
        raise ValueError("window and stride must be positive")
    if length <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - window + 1, stride, dtype=np.int64)
    if starts[-1] != length - window:
        starts = np.append(starts, length - window)
    return starts


def _random_crops(x: torch.Tensor, window: int, generator: torch.Generator) -> torch.Tensor:
    """One random crop of ``window`` samples per record of x (B, C, L), batched with gather."""
    b, c, length = x.shape
    if length <= window:
        return x
    starts = torch.randint(0, length - window + 1, (b,), generator=generator)
    idx = starts[:, None] + torch.arange(window)
    return torch.gather(x, 2, idx[:, None, :].expand(b, c, window))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if isinstance(module, nn.modules.batchnorm._BatchNorm) or name == "bias":
                no_decay.append(p)
            else:
                decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------------------------------------
# training and prediction
# --------------------------------------------------------------------------------------------------------


def build_classifier(
    config: ClassifierTrainConfig, in_leads: int, n_classes: int, label_names: Sequence[str] | None = None
) -> ECGClassifier:
    overrides = {} if config.head_dropout is None else {"head_dropout": config.head_dropout}
    net_cfg = MODEL_PRESETS[config.model](n_classes=n_classes, in_leads=in_leads, **overrides)
    return ECGClassifier(
        net_cfg,
        fs=config.fs,
        crop_seconds=config.crop_seconds,
        stride_seconds=config.stride_seconds,
        label_names=label_names,
    )


def train_classifier(
    signals,
    labels,
    val=None,
    config: ClassifierTrainConfig | None = None,
    progress: bool = True,
    label_names: Sequence[str] | None = None,
) -> ECGClassifier:
    """Train an :class:`ECGClassifier` on ``signals`` (N, leads, L) float32 mV and multi-hot ``labels``
    (N, k). ``val = (signals, labels)`` enables per-epoch validation macro AUC (sliding windows, max) and,
    with ``config.keep_best``, the return of the best epoch's weights. The per-epoch record is in
    ``model.history``. The returned model is in eval mode, on ``config.device``.
    """
    cfg = config or ClassifierTrainConfig()
    x = check_signals(signals)
    y = check_labels(labels, len(x))
    n, n_leads, length = x.shape
    if n < 2:
        raise DataError("signals", "need at least 2 training records")
    if val is not None:
        val_x = check_signals(val[0], "val signals")
        val_y = check_labels(val[1], len(val_x), "val labels")
        if val_y.shape[1] != y.shape[1] or val_x.shape[1] != n_leads:
            raise DataError("val", "leads or classes differ from the training set")
    device = resolve_device(cfg.device)
    window = min(cfg.crop_samples, length)

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_classifier(cfg, n_leads, y.shape[1], label_names)
    if cfg.standardize == "global":
        mean = x.mean(dtype=np.float64)
        std = x.std(dtype=np.float64)
    elif cfg.standardize == "per_lead":
        mean = x.mean(axis=(0, 2), dtype=np.float64)
        std = x.std(axis=(0, 2), dtype=np.float64)
    else:
        mean, std = 0.0, 1.0
    model.set_standardization(mean, np.maximum(std, 1e-6))
    model.to(device)

    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    bs = min(cfg.batch_size, n)
    n_batches = n // bs + (1 if n % bs >= 2 else 0)  # a last batch of one record would break BatchNorm
    total_steps = cfg.epochs * n_batches

    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    if cfg.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.3, anneal_strategy="cos"
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    loss_fn = nn.BCEWithLogitsLoss()
    non_blocking = device.type == "cuda"

    history: list[dict] = []
    best_auc, best_state = -math.inf, None
    bar = tqdm(range(cfg.epochs), desc=f"train {cfg.model}", leave=False, disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen)
        running, seen = torch.zeros((), device=device), 0
        for b in range(n_batches):
            idx = perm[b * bs : (b + 1) * bs]
            xb = _random_crops(xt[idx], window, gen).to(device, non_blocking=non_blocking)
            yb = yt[idx].to(device, non_blocking=non_blocking)
            with _autocast(device, cfg.amp):
                logits = model(xb)
            loss = loss_fn(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.detach() * len(idx)  # no host sync per step
            seen += len(idx)
        record = {
            "epoch": epoch + 1,
            "train_loss": float(running) / max(seen, 1),
            "lr": optimizer.param_groups[0]["lr"],
        }
        if val is not None:
            scores = predict(model, val_x, batch_size=cfg.eval_batch_size, amp=cfg.amp)
            record["val_macro_auc"] = macro_auc(val_y, scores)
            if cfg.keep_best and np.isfinite(record["val_macro_auc"]) and record["val_macro_auc"] > best_auc:
                best_auc = record["val_macro_auc"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                record["best"] = True
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k in ("train_loss", "val_macro_auc")})
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    model.history = history
    return model


@torch.no_grad()
def predict(
    model: nn.Module,
    signals,
    fs: float | None = None,
    crop_seconds: float | None = None,
    stride_seconds: float | None = None,
    batch_size: int = 256,
    aggregate: str = "max",
    amp: bool = True,
) -> np.ndarray:
    """Class probabilities (N, k): sigmoid of the model's logits on sliding windows of ``crop_seconds``
    every ``stride_seconds`` (default half a window; the last window is flush with the end), aggregated
    over the windows of each record by their maximum (``aggregate="mean"`` for the average).

    ``model`` maps (B, leads, window) to logits (B, k); for an :class:`ECGClassifier` the defaults of
    ``fs``, ``crop_seconds`` and ``stride_seconds`` are the model's. Records are processed in batches of
    about ``batch_size`` windows.
    """
    if aggregate not in ("max", "mean"):
        raise ValueError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")
    fs = fs if fs is not None else getattr(model, "fs", 100.0)
    crop_seconds = crop_seconds if crop_seconds is not None else getattr(model, "crop_seconds", 2.5)
    if stride_seconds is None:
        stride_seconds = getattr(model, "stride_seconds", None)
    if stride_seconds is None:
        stride_seconds = crop_seconds / 2
    x = check_signals(signals)
    length = x.shape[-1]
    window = min(int(round(crop_seconds * fs)), length)
    stride = max(1, int(round(stride_seconds * fs)))
    starts = sliding_window_starts(length, window, stride)
    per_window = map_windows(
        model, x, window, starts, batch_size, amp, lambda windows: torch.sigmoid(model(windows).float())
    )
    return (per_window.amax(dim=1) if aggregate == "max" else per_window.mean(dim=1)).numpy()


@torch.no_grad()
def map_windows(
    model: nn.Module, x: np.ndarray, window: int, starts: np.ndarray, batch_size: int, amp: bool, fn
) -> torch.Tensor:
    """``fn`` on the windows ``x[:, :, s:s + window]`` (s in ``starts``) of every record, in eval mode and
    batches of about ``batch_size`` windows; returns (N, n_windows, ...) float32 on the CPU."""
    n, n_leads, _ = x.shape
    device = _model_device(model)
    time_idx = (torch.from_numpy(np.asarray(starts))[:, None] + torch.arange(window)).to(device)  # (W, window)
    n_windows = len(starts)
    per_chunk = max(1, batch_size // n_windows)
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, n, per_chunk):
            xb = torch.from_numpy(x[i : i + per_chunk]).to(device)
            m = xb.shape[0]
            windows = xb[:, :, time_idx].permute(0, 2, 1, 3).reshape(m * n_windows, n_leads, window)
            with _autocast(device, amp):
                result = fn(windows)
            out.append(result.float().reshape(m, n_windows, *result.shape[1:]).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
