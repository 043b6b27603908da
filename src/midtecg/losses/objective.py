"""Training objectives: the epsilon MSE of DDPM and MIDT's mel-informed objective (method.md sections 3, 4).

    eps:   L = MSE(out, target)
    midt:  L = MSE(out, target) + mel_weight * L_mel(mel_target(x0_hat), mel_target(x0))

``out`` is the network output and ``target`` what its parameterisation asks for
(``midtecg.diffusion.Parameterization``: eps, v or the rectified-flow velocity; with a plain
``NoiseSchedule`` it is eps, the paper's setting). x0_hat is the clean signal implied by the output (for eps:
(x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t)); gradients flow through it. ``mel_target`` is the identity
(``"x0"``) or the posterior mean of x_{t-1}, mu~(., x_t, t) (``"posterior_mean"``, DDPM only), and L_mel the
multi-resolution mel loss (``mel_scales`` "paper": (512, 128, 64) + (256, 64, 128); "small": (64, 16, 16);
"rhythm": the paper's plus (1024, 256, 256), one window over a 10 s record at 100 Hz that resolves rhythm) at
``fs`` (set from the training cache's rate by the training loop). The mel weight is constant over t
(0.02 in the paper; 0.2 is an ablation). With per-lead data scaling the network works on x / scale;
``signal_scale`` turns x0_hat and x0 back into millivolts before the mel term, so that term means the same
whatever the scaling. Samples whose x0_hat carries no information (eps prediction at alpha_bar = 0) get no
mel term (prediction and target both set to 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from midtecg.diffusion.parameterization import Parameterization
from midtecg.diffusion.schedule import NoiseSchedule

from .config import ObjectiveConfig
from .mel import multi_resolution_mel_loss

__all__ = ["training_loss"]


def training_loss(
    output: torch.Tensor,
    noise: torch.Tensor,
    x_t: torch.Tensor,
    x0: torch.Tensor,
    t: torch.Tensor,
    schedule: NoiseSchedule | Parameterization,
    objective: ObjectiveConfig | None = None,
    signal_scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar loss and its parts (detached scalar tensors: ``mse``, ``mel`` for midt, ``loss``).

    Shapes: ``output``, ``noise``, ``x_t``, ``x0``: (B, C, L); ``t``: (B,) (long steps, or float flow
    times); ``schedule``: a ``NoiseSchedule`` (epsilon prediction) or a ``Parameterization``;
    ``signal_scale``: None or per-lead millivolts per model unit, broadcasting as (C, 1). The MSE is taken
    in float32 (averaged over all elements); the mel term always runs in float32 with autocast disabled.
    """
    objective = ObjectiveConfig() if objective is None else objective
    param = schedule if isinstance(schedule, Parameterization) else Parameterization("eps", schedule)
    for name, tensor in (("noise", noise), ("x_t", x_t), ("x0", x0)):
        if tensor.shape != output.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(output.shape)} like the output")
    if objective.kind == "midt" and objective.mel_target == "posterior_mean" and param.is_flow:
        raise ValueError("mel_target 'posterior_mean' needs a DDPM schedule; use 'x0' with rectified flow")
    mse = F.mse_loss(output.float(), param.target(x0.float(), noise.float(), t))
    parts: dict[str, torch.Tensor] = {"mse": mse.detach()}
    loss = mse
    if objective.kind == "midt":
        with torch.autocast(device_type=output.device.type, enabled=False):
            out32, xt32, x032 = output.float(), x_t.float(), x0.float()
            _, x0_hat = param.split(out32, xt32, t)
            if objective.mel_target == "posterior_mean":
                pred = param.schedule.posterior_mean(x0_hat, xt32, t)
                target = param.schedule.posterior_mean(x032, xt32, t)
            else:
                pred, target = x0_hat, x032
            known = param.x0_known(t, target)
            if known is not None:
                pred, target = pred * known, target * known
            if signal_scale is not None:
                scale = signal_scale.to(device=pred.device, dtype=pred.dtype)
                pred, target = pred * scale, target * scale
            mel = multi_resolution_mel_loss(
                pred,
                target,
                objective.mel_scales,
                fs=objective.fs,
                log_order=objective.mel_log_order,
            )
        parts["mel"] = mel.detach()
        loss = mse + float(objective.mel_weight) * mel
    parts["loss"] = loss.detach()
    return loss, parts
