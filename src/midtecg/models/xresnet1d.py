"""1-D XResNet: the ECG classifier of the evaluation suite (PTB-XL benchmark's ``xresnet1d101``).

Architecture (written from the "Bag of Tricks for Image Classification with CNNs" description, He et al.
2019, adapted to 1-D signals as in the PTB-XL benchmark):

* **Stem** (ResNet-C): three conv-BN-ReLU layers with ``stem_widths`` = (32, 32, 64) output channels, kernel
  ``stem_kernel_size`` (5 here), stride 2 on the *first* conv only, then max-pool (kernel 3, stride 2,
  padding 1). The stem divides the length by 4.
* **Body**: four stages of bottleneck blocks with ``layers`` = (3, 4, 23, 3) blocks, hidden widths
  ``widths`` = (64, 128, 256, 512) and ``expansion`` 4 (stage outputs 256, 512, 1024, 2048 channels).
  A bottleneck block is conv1x1 (in -> w) BN ReLU, conv k (w -> w, stride s) BN ReLU, conv1x1
  (w -> w * expansion) BN with its gamma initialised to zero (so every block starts as the identity), then
  ReLU(path + shortcut). The stride sits on the middle conv (ResNet-B): 2 in the first block of stages
  2-4, else 1. The shortcut (ResNet-D) is: average-pool (2, ceil mode) when the stride is 2, then a 1x1
  conv + BN when the channel count changes; the identity otherwise.
* **Head** (kept simple): concat of adaptive average and max pooling over time (2 x 2048 features for
  xresnet1d101), flatten, BatchNorm1d, dropout, one Linear to ``n_classes`` logits. The PTB-XL benchmark
  inserts an extra Linear(4096, 512) + ReLU + BN + dropout layer before the output; we do not.

Convolutions have no bias (BN follows); weights use Kaiming-normal (fan-in, ReLU gain) initialisation.
The network is fully convolutional up to the global pooling, so any input length >= 32 samples works.

``XResNet1d.embed(x)`` returns the pooled penultimate features (the head's input) used for Frechet
distances and embedding-space privacy metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = [
    "XResNet1dConfig",
    "XResNet1d",
    "xresnet1d101",
    "xresnet1d50",
    "xresnet1d_small",
    "count_parameters",
]


@dataclass
class XResNet1dConfig:
    """Hyper-parameters of :class:`XResNet1d`.

    ``widths`` are the bottleneck (hidden) widths of the four stages; stage ``i`` outputs
    ``widths[i] * expansion`` channels. ``embedding_dim`` (the pooled feature size) is
    ``2 * widths[-1] * expansion``.
    """

    in_leads: int = 12
    n_classes: int = 71
    layers: tuple[int, ...] = (3, 4, 23, 3)
    kernel_size: int = 5
    stem_kernel_size: int = 5
    stem_widths: tuple[int, ...] = (32, 32, 64)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    expansion: int = 4
    head_dropout: float = 0.5

    def __post_init__(self) -> None:
        self.layers = tuple(int(v) for v in self.layers)
        self.stem_widths = tuple(int(v) for v in self.stem_widths)
        self.widths = tuple(int(v) for v in self.widths)
        if len(self.layers) != len(self.widths):
            raise ValueError(f"layers {self.layers} and widths {self.widths} must have the same length")
        if len(self.stem_widths) < 1:
            raise ValueError("stem_widths needs at least one entry")
        if self.kernel_size % 2 == 0 or self.stem_kernel_size % 2 == 0:
            raise ValueError("kernel sizes must be odd (same-length padding)")
        if self.in_leads < 1 or self.n_classes < 1 or self.expansion < 1:
            raise ValueError("in_leads, n_classes and expansion must be positive")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout}")

    @property
    def embedding_dim(self) -> int:
        return 2 * self.widths[-1] * self.expansion

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("layers", "stem_widths", "widths"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> XResNet1dConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown XResNet1dConfig fields: {sorted(unknown)}")
        return cls(**d)


def xresnet1d101(n_classes: int = 71, in_leads: int = 12, **overrides) -> XResNet1dConfig:
    """The PTB-XL benchmark's classifier: layers 3-4-23-3, kernel 5, expansion 4."""
    return XResNet1dConfig(in_leads=in_leads, n_classes=n_classes, layers=(3, 4, 23, 3), **overrides)


def xresnet1d50(n_classes: int = 71, in_leads: int = 12, **overrides) -> XResNet1dConfig:
    """Layers 3-4-6-3 (a cheaper sibling of xresnet1d101)."""
    return XResNet1dConfig(in_leads=in_leads, n_classes=n_classes, layers=(3, 4, 6, 3), **overrides)


def xresnet1d_small(n_classes: int = 71, in_leads: int = 12, **overrides) -> XResNet1dConfig:
    """A narrow, shallow variant (one block per stage) that trains in seconds on a CPU."""
    params = dict(
        layers=(1, 1, 1, 1),
        stem_widths=(16, 16, 32),
        widths=(16, 32, 64, 64),
        expansion=4,
        head_dropout=0.2,
    )
    params.update(overrides)
    return XResNet1dConfig(in_leads=in_leads, n_classes=n_classes, **params)


def _conv_bn(
    c_in: int, c_out: int, kernel_size: int, stride: int = 1, relu: bool = True, zero_bn: bool = False
) -> nn.Sequential:
    conv = nn.Conv1d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    bn = nn.BatchNorm1d(c_out)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    nn.init.zeros_(bn.bias)
    layers: list[nn.Module] = [conv, bn]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck1d(nn.Module):
    """conv1x1 -> conv k (strided) -> conv1x1 (zero-init BN), plus the ResNet-D shortcut."""

    def __init__(self, c_in: int, width: int, c_out: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.path = nn.Sequential(
            _conv_bn(c_in, width, 1),
            _conv_bn(width, width, kernel_size, stride=stride),
            _conv_bn(width, c_out, 1, relu=False, zero_bn=True),
        )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool1d(stride, stride=stride, ceil_mode=True))
        if c_in != c_out:
            shortcut.append(_conv_bn(c_in, c_out, 1, relu=False))
        self.shortcut = nn.Sequential(*shortcut)  # empty Sequential is the identity
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.path(x) + self.shortcut(x))


class XResNet1d(nn.Module):
    """1-D XResNet. ``forward(x (B, in_leads, L)) -> logits (B, n_classes)``."""

    def __init__(self, config: XResNet1dConfig) -> None:
        super().__init__()
        self.config = config
        stem: list[nn.Module] = []
        c = config.in_leads
        for i, w in enumerate(config.stem_widths):
            stem.append(_conv_bn(c, w, config.stem_kernel_size, stride=2 if i == 0 else 1))
            c = w
        stem.append(nn.MaxPool1d(kernel_size=3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)

        stages: list[nn.Module] = []
        for i, (n_blocks, width) in enumerate(zip(config.layers, config.widths)):
            c_out = width * config.expansion
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Bottleneck1d(c, width, c_out, config.kernel_size, stride))
                c = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

        self.head_norm = nn.BatchNorm1d(2 * c)
        self.head_dropout = nn.Dropout(config.head_dropout)
        self.head_linear = nn.Linear(2 * c, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map of the last stage, (B, C, L / 32)."""
        if x.ndim != 3 or x.shape[1] != self.config.in_leads:
            raise ValueError(f"expected input (B, {self.config.in_leads}, L), got {tuple(x.shape)}")
        return self.stages(self.stem(x))

    def embed(self, x: torch.Tensor, pool: str = "concat") -> torch.Tensor:
        """Pooled penultimate features: ``concat`` (avg ++ max, the head's input), ``avg`` or ``max``."""
        h = self.features(x)
        if pool == "avg":
            return h.mean(dim=-1)
        if pool == "max":
            return h.amax(dim=-1)
        if pool == "concat":
            return torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        raise ValueError(f"pool must be 'concat', 'avg' or 'max', got {pool!r}")

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.head_linear(self.head_dropout(self.head_norm(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, "concat"))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
