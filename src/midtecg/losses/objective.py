"""Training objectives: the epsilon MSE of DDPM and MIDT's mel-informed objective (method.md sections 3, 4).

    eps:   L = MSE(eps_hat, eps)
    midt:  L = MSE(eps_hat, eps) + mel_weight * L_mel(target(x0_hat), target(x0))

with x0_hat = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t) (gradients flow through eps_hat), target the
identity (``mel_target="x0"``) or the posterior mean of x_{t-1}, mu~(., x_t, t) (``"posterior_mean"``), and
L_mel the multi-resolution mel loss (``mel_scales`` "paper": (512, 128, 64) + (256, 64, 128); "small":
(64, 16, 16)). The mel weight is constant over t (0.02 in the paper; 0.2 is an ablation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from midtecg.diffusion.schedule import NoiseSchedule

from .mel import SCALE_PRESETS, multi_resolution_mel_loss

__all__ = ["ObjectiveConfig", "training_loss", "OBJECTIVE_KINDS", "MEL_TARGETS"]

OBJECTIVE_KINDS: tuple[str, ...] = ("eps", "midt")
MEL_TARGETS: tuple[str, ...] = ("x0", "posterior_mean")


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective to train with. ``mel_*`` fields only matter for ``kind="midt"``."""

    kind: str = "eps"
    mel_weight: float = 0.02
    mel_target: str = "x0"
    mel_scales: str = "paper"
    sample_rate: float = 100.0

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVE_KINDS:
            raise ValueError(f"unknown objective kind {self.kind!r}; expected one of {', '.join(OBJECTIVE_KINDS)}")
        if self.mel_target not in MEL_TARGETS:
            raise ValueError(f"unknown mel_target {self.mel_target!r}; expected one of {', '.join(MEL_TARGETS)}")
        if self.mel_scales not in SCALE_PRESETS:
            raise ValueError(f"unknown mel_scales {self.mel_scales!r}; expected one of {', '.join(SCALE_PRESETS)}")
        if not float(self.mel_weight) >= 0.0:
            raise ValueError(f"mel_weight must be >= 0, got {self.mel_weight}")
        if not float(self.sample_rate) > 0.0:
            raise ValueError(f"sample_rate must be > 0, got {self.sample_rate}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ObjectiveConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ObjectiveConfig fields: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        for key in ("mel_weight", "sample_rate"):
            if key in kwargs:
                kwargs[key] = float(kwargs[key])
        return cls(**kwargs)


def training_loss(
    eps_hat: torch.Tensor,
    noise: torch.Tensor,
    x_t: torch.Tensor,
    x0: torch.Tensor,
    t: torch.Tensor,
    schedule: NoiseSchedule,
    objective: ObjectiveConfig | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar loss and its parts (detached scalar tensors: ``mse``, ``mel`` for midt, ``loss``).

    Shapes: ``eps_hat``, ``noise``, ``x_t``, ``x0``: (B, C, L); ``t``: (B,) long. The MSE is taken in
    float32 (averaged over all elements); the mel term always runs in float32 with autocast disabled.
    """
    objective = ObjectiveConfig() if objective is None else objective
    for name, tensor in (("noise", noise), ("x_t", x_t), ("x0", x0)):
        if tensor.shape != eps_hat.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(eps_hat.shape)} like eps_hat")
    mse = F.mse_loss(eps_hat.float(), noise.float())
    parts: dict[str, torch.Tensor] = {"mse": mse.detach()}
    loss = mse
    if objective.kind == "midt":
        with torch.autocast(device_type=eps_hat.device.type, enabled=False):
            eps32, xt32, x032 = eps_hat.float(), x_t.float(), x0.float()
            x0_hat = schedule.predict_x0(xt32, eps32, t)
            if objective.mel_target == "posterior_mean":
                pred = schedule.posterior_mean(x0_hat, xt32, t)
                target = schedule.posterior_mean(x032, xt32, t)
            else:
                pred, target = x0_hat, x032
            mel = multi_resolution_mel_loss(
                pred, target, objective.mel_scales, sample_rate=objective.sample_rate
            )
        parts["mel"] = mel.detach()
        loss = mse + float(objective.mel_weight) * mel
    parts["loss"] = loss.detach()
    return loss, parts
