"""Is the run learning? Checks the training loop writes into its log (``log.csv`` column ``warning``, and
stderr) at every validation and at the last step. Each warning starts with its kind ("diverged", "far from
the data", "sample amplitude") and a colon; several are joined by "; ".

Two reference levels are computed once, on the same fixed validation batches (same records, times and
noise) as the validation loss, with the run's own objective (mel term included):

- ``zero``: the loss of a network that outputs zeros, which is what the zero-initialised output layer of
  SSSD-ECG gives at step 0;
- ``gaussian``: the loss of the best predictor for data that were Gaussian, independent over time, with the
  training split's per-lead mean and variance (``midtecg.diffusion.gaussian_optimal_output``). It knows the
  signal's amplitude but nothing of its shape, so a network that has learnt anything of an ECG beats it.

Warnings:

1. ``diverged``: the validation loss is not finite, or above the ``zero`` level (worse than the untrained
   network), at any validation;
2. ``far from the data``: the validation loss is not below the ``gaussian`` level at a validation at or
   after step ``train.check_after_steps`` (default 2000), or at the last step of the run whatever its length.
   The built-in model's recipe (configs/default-model.toml, batch 8, lr 1e-3) on the 1,924 training records
   of the shared PTB-XL subset crosses it between steps 700 and 800 (validation loss 0.50 at step 700, 0.26
   at step 800, against a Gaussian level of 0.45; the shipped model reaches 0.15 at step 4000), so the
   default leaves a margin of 2.5x for slower recipes;
3. ``sample amplitude``: ``train.check_samples`` ECGs (default 4; 0 switches the check off) sampled from the
   sampling weights (the EMA when kept) with a quick sampler (DDIM 20 steps; Euler 20 steps for flow), from
   the conditions of the first validation records: the 99th percentile of |x| in millivolts over the 8 model
   leads, divided by the same for the real validation signals, outside [1/3, 3]. An undertrained model
   gives noise of several times the data's amplitude (issue 12: 80 steps of configs/tiny.toml, about
   +-13 mV); the built-in recipe's ratio was 4.1-5.7 up to step 700 and 2.4 at step 800.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from midtecg.diffusion import Parameterization, gaussian_optimal_output, make_parameterized_sampler
from midtecg.losses import ObjectiveConfig, training_loss

__all__ = [
    "validation_batches",
    "reference_losses",
    "validation_warning",
    "amplitude_reference",
    "sample_amplitude_ratio",
    "amplitude_warning",
    "AMPLITUDE_RANGE",
    "CHECK_SAMPLER_STEPS",
]

AMPLITUDE_RANGE = (1.0 / 3.0, 3.0)
CHECK_SAMPLER_STEPS = 20


def validation_batches(
    x_val: torch.Tensor,
    cond_val: dict,
    param: Parameterization,
    batch_size: int,
    batches: int,
    seed: int,
    device: torch.device,
):
    """The fixed validation batches: ``(x0, conditions, t, noise, x_t)``, the same at every call."""
    for i in range(batches):
        idx = np.arange(i * batch_size, (i + 1) * batch_size) % len(x_val)
        x0 = x_val[idx].to(device)
        gen = torch.Generator(device=device).manual_seed(seed + 7919 * (i + 1))
        t = param.draw_times(len(idx), gen, device)
        noise = torch.randn(x0.shape, generator=gen, device=device)
        yield x0, {k: v[idx].to(device) for k, v in cond_val.items()}, t, noise, param.add_noise(x0, noise, t)


@torch.no_grad()
def reference_losses(
    batches,
    param: Parameterization,
    objective: ObjectiveConfig,
    mean: torch.Tensor,
    var: torch.Tensor,
    signal_scale: torch.Tensor | None = None,
) -> dict[str, float]:
    """Mean ``zero`` and ``gaussian`` losses over ``batches`` (from ``validation_batches``); ``mean`` and
    ``var`` per lead, shaped (C, 1), in the network's units."""
    zero, gaussian = [], []
    for x0, _, t, noise, x_t in batches:
        mean_d, var_d = mean.to(x_t.device), var.to(x_t.device)
        for outputs, output in (
            (zero, torch.zeros_like(x_t)),
            (gaussian, gaussian_optimal_output(param, x_t, t, mean_d, var_d)),
        ):
            outputs.append(training_loss(output, noise, x_t, x0, t, param, objective, signal_scale)[0].item())
    return {"zero": float(np.mean(zero)), "gaussian": float(np.mean(gaussian))}


def validation_warning(step: int, val_loss: float, references: dict[str, float], check_after: int, final: bool) -> str:
    """The warning for a validation loss at ``step`` ("" when there is none); see the module docstring."""
    if not math.isfinite(val_loss) or val_loss > references["zero"]:
        return (
            f"diverged: validation loss {val_loss:.4g} at step {step} is above {references['zero']:.4g}, the "
            "loss of a network that outputs zeros (the untrained one); lower train.lr or set train.grad_clip"
        )
    if (step >= check_after or final) and val_loss >= references["gaussian"]:
        return (
            f"far from the data: validation loss {val_loss:.4g} at step {step} is not below "
            f"{references['gaussian']:.4g}, the loss of the best predictor that knows only the data's "
            "per-lead mean and variance, so samples will look like noise (train longer, or see "
            "train.lr, data.scaling, diffusion.prediction)"
        )
    return ""


def amplitude_reference(signals_mv: torch.Tensor, limit: int = 256) -> float:
    """99th percentile of |x| (mV) over the first ``limit`` records of ``(N, C, L)`` signals."""
    return float(np.percentile(np.abs(signals_mv[:limit].detach().cpu().numpy()), 99))


@torch.no_grad()
def sample_amplitude_ratio(
    model: torch.nn.Module,
    conditions: dict[str, torch.Tensor],
    param: Parameterization,
    length: int,
    reference: float,
    signal_scale: torch.Tensor | None,
    seed: int,
    autocast,
) -> float:
    """Sample one ECG per condition row with the quick check sampler and return its 99th percentile of |x|
    (mV: times ``signal_scale``, per lead (C, 1), when the network works on scaled signals) divided by
    ``reference`` (``amplitude_reference`` of real signals)."""
    device = next(model.parameters()).device
    batch = next(iter(conditions.values())).shape[0]
    name = "euler" if param.is_flow else "ddim"
    solver = make_parameterized_sampler(param, name, steps=min(CHECK_SAMPLER_STEPS, _max_steps(param)))
    was_training = model.training
    model.eval()
    try:
        with model.cached_kernels(), autocast:
            x = solver.sample(
                lambda x_t, t: model(x_t, param.model_time(t), conditions).float(),
                (batch, model.config.in_leads, length),
                generator=torch.Generator(device=device).manual_seed(seed),
                device=device,
                progress=False,
            )
    finally:
        model.train(was_training)
    if signal_scale is not None:
        x = x * signal_scale.to(x.device)
    if not torch.isfinite(x).all():
        return math.inf
    return amplitude_reference(x) / max(reference, 1e-12)


def _max_steps(param: Parameterization) -> int:
    return CHECK_SAMPLER_STEPS if param.is_flow else param.schedule.num_steps


def amplitude_warning(step: int, ratio: float) -> str:
    """The warning for a sample amplitude ratio ("" when it lies in ``AMPLITUDE_RANGE``)."""
    low, high = AMPLITUDE_RANGE
    if low <= ratio <= high:
        return ""
    return (
        f"sample amplitude: at step {step} sampled ECGs reach {ratio:.3g}x the real signals' amplitude "
        f"(99th percentile of |x|, expected within {low:.2g}-{high:.2g}x), the model is far from the data"
    )
