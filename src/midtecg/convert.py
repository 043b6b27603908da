"""Import checkpoints of the reference SSSD-ECG code (AI4HealthUOL/SSSD-ECG) as midtecg model folders.

The reference's checkpoint and run-config format, and reading them safely, are :mod:`midtecg.sssd_reference`'s
(its names are re-exported here). ``import_sssd_ecg(checkpoint, out_dir, config=None)`` writes ``config.json`` +
``model.safetensors``, the format of midtecg's own checkpoints, so ``midtecg generate --model``,
``midtecg.sample`` and ``midtecg evaluate --model`` load the result like any other model; every tensor is
checked before it is used.

How the reference's tensors map (``midtecg.models.sssd`` / ``midtecg.models.s4``):

- weight-normalised convs: ``weight_g`` / ``weight_v`` -> ``parametrizations.weight.original0`` /
  ``original1`` (the same gain-and-direction split, one gain per output channel);
- the label table ``embedding.weight`` (71, d) is used as ``y @ E``: it becomes the bias-free
  ``cond_embed.labels`` Linear, transposed;
- S4 layers: ``C`` (directions, H, N/2, 2) is the length-corrected C~ as real pairs in both; ``D`` (1, H)
  and the output linear's bias (H, 1) are squeezed; ``log_dt`` (H,) stays per feature. The reference keeps
  one copy per feature of the NPLR diagonal ``w`` (H, N/2, 2), ``B`` and ``P`` (1, H, N/2, 2); midtecg keeps
  one per layer (``lam``, ``B``, ``P``), so the copies must agree exactly, or the checkpoint is refused.
  ``Q`` (= conj(P)) and the FFT nodes ``omega`` / ``z`` are derived quantities: they are checked, not kept.
- leads: the reference's arrays hold I, II, V1-V6, III, aVR, aVL, aVF and its model takes channels
  (0, 2, 3, 4, 5, 6, 7, 11) of them, i.e. I, V1-V6, aVF, the order of ``MODEL_LEADS``; the input and output
  convs are permuted if the two orders ever differ.
- labels: the 71 SCP statements in alphabetical order, as ``midtecg.data.labels.SCP_CODES`` (method.md 1).

midtecg computes the S4 kernel the reference computes with pykeops or its CUDA Cauchy extension (every mode
and its conjugate). The reference's pure-PyTorch fallback (``cauchy_slow``, used when neither is installed)
sums the stored modes only, which is a different function: compare against the reference on those paths.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save

import midtecg
from midtecg.data.condition_groups import ConditionGroup
from midtecg.data.conditions import ConditionEncoder
from midtecg.data.errors import DataError
from midtecg.data.labels import NUM_LABELS
from midtecg.data.leads import MODEL_LEADS
from midtecg.diffusion import NoiseSchedule
from midtecg.io.arrays import atomic_write_bytes, atomic_write_text
from midtecg.models.config import SSSDConfig
from midtecg.models.files import WEIGHTS_SHA256
from midtecg.models.sssd import SSSDECG
from midtecg.sssd_reference import (
    REFERENCE_ARRAY_LEADS,
    REFERENCE_MODEL_LEADS,
    RESIDUAL_BLOCKS,
    S4_KERNEL,
    ReferenceConfig,
    RunConfig,
    infer_reference_config,
    is_reference_buffer,
    load_reference_checkpoint,
    read_run_config,
    reference_layout,
)

__all__ = [
    "REFERENCE_ARRAY_LEADS",
    "REFERENCE_MODEL_LEADS",
    "ReferenceConfig",
    "RunConfig",
    "convert_state_dict",
    "import_sssd_ecg",
    "infer_reference_config",
    "is_reference_buffer",
    "load_reference_checkpoint",
    "read_run_config",
    "reference_layout",
]


# --------------------------------------------------------------------------------------------------------
# Checks and the mapping
# --------------------------------------------------------------------------------------------------------


def _check_layout(state: Mapping[str, torch.Tensor], layout: Mapping[str, tuple], origin: str, source: str) -> None:
    """Names, shapes, dtypes, finiteness; the first problem is named (with a count of the others)."""
    problems = []
    for key, expected in layout.items():
        if key not in state:
            problems.append(f"model_state_dict lacks {key!r} (shape {expected})")
        elif tuple(state[key].shape) != expected:
            problems.append(f"model_state_dict[{key!r}] has shape {tuple(state[key].shape)}, expected {expected}")
    problems += [f"model_state_dict has an unexpected entry {key!r}" for key in state if key not in layout]
    if not problems:
        for key, value in state.items():
            if value.layout != torch.strided or not value.is_floating_point():
                problems.append(
                    f"model_state_dict[{key!r}] is a {value.dtype} {value.layout} tensor, expected dense floating point"
                )
            elif not key.endswith(S4_KERNEL + "z") and not bool(torch.isfinite(value).all()):
                problems.append(f"model_state_dict[{key!r}] holds NaN or infinite values")
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise DataError(source, f"{problems[0]} for the SSSD-ECG configuration {origin}{more}")


def _midtecg_config(cfg: ReferenceConfig, source: str) -> SSSDConfig:
    """The midtecg model that holds the same function, or a DataError naming the setting it cannot hold."""
    required = [
        ("in_channels", cfg.in_channels == len(MODEL_LEADS), f"{len(MODEL_LEADS)} (leads {', '.join(MODEL_LEADS)})"),
        ("out_channels", cfg.out_channels == len(MODEL_LEADS), f"{len(MODEL_LEADS)}"),
        ("skip_channels", cfg.skip_channels == cfg.res_channels, f"res_channels ({cfg.res_channels})"),
        (
            "diffusion_step_embed_dim_mid",
            cfg.diffusion_step_embed_dim_mid == cfg.diffusion_step_embed_dim_out,
            f"diffusion_step_embed_dim_out ({cfg.diffusion_step_embed_dim_out})",
        ),
        (
            "diffusion_step_embed_dim_in",
            cfg.diffusion_step_embed_dim_in % 2 == 0 and cfg.diffusion_step_embed_dim_in >= 4,
            "an even number >= 4",
        ),
        ("s4_bidirectional", cfg.s4_bidirectional, "1"),
        ("s4_layernorm", cfg.s4_layernorm, "1"),
        ("s4_lmax", cfg.s4_lmax % 2 == 0 and cfg.s4_lmax > 0, "a positive even length"),
        ("s4_d_state", cfg.s4_d_state % 2 == 0 and cfg.s4_d_state > 0, "a positive even state size"),
        ("label_embed_classes", cfg.label_embed_classes == NUM_LABELS, f"{NUM_LABELS} (the SCP statements)"),
        ("num_res_layers", cfg.num_res_layers > 0, "at least 1"),
    ]
    for key, ok, expected in required:
        if not ok:
            raise DataError(
                source,
                f"wavenet_config {key} = {getattr(cfg, key)!r} cannot be imported: midtecg's SSSD-ECG needs {expected}",
            )
    return SSSDConfig(
        in_leads=len(MODEL_LEADS),
        length=cfg.s4_lmax,
        channels=cfg.res_channels,
        blocks=cfg.num_res_layers,
        state_size=cfg.s4_d_state,
        s4_variant="s4",
        step_embed_dim=cfg.diffusion_step_embed_dim_in,
        step_hidden=cfg.diffusion_step_embed_dim_out,
        condition_groups=(ConditionGroup("labels", NUM_LABELS, cfg.label_embed_dim),),
        null_conditions=False,
    )


def _single_copy(state: Mapping[str, torch.Tensor], key: str, feature_dim: int, source: str) -> torch.Tensor:
    """The one value that every feature's copy of a per-feature buffer holds (exactly), or a DataError."""
    copies = state[key].movedim(feature_dim, 0).flatten(1)
    differs = (copies != copies[:1]).any(dim=1)
    if bool(differs.any()):
        feature = int(differs.nonzero()[0])
        gap = float((copies[feature] - copies[0]).abs().max())
        raise DataError(
            source,
            f"model_state_dict[{key!r}]: the reference stores a copy per feature and midtecg one "
            f"per layer, but feature {feature} differs from feature 0 (by up to {gap:.3g}); "
            "only checkpoints with frozen A and B (the reference's default) can be imported",
        )
    return state[key].select(feature_dim, 0)


def _check_derived(state: Mapping[str, torch.Tensor], kernel: str, length: int, source: str) -> None:
    """Q = conj(P) exactly; omega and z are the FFT nodes of ``length`` and their bilinear transform."""
    p, q = state[kernel + "P"], state[kernel + "Q"]
    if not (torch.equal(q[..., 0], p[..., 0]) and torch.equal(q[..., 1], -p[..., 1])):
        raise DataError(
            source,
            f"model_state_dict[{kernel + 'Q'!r}] is not the complex conjugate of "
            f"{kernel + 'P'!r}; midtecg's S4 assumes A = Lambda - P P^*",
        )
    k = torch.arange(length // 2 + 1, dtype=torch.float64)
    omega = torch.polar(torch.ones_like(k), -2 * math.pi * k / length)
    stored = torch.complex(state[kernel + "omega"][:, 0].double(), state[kernel + "omega"][:, 1].double())
    if float((stored - omega).abs().max()) > 1e-3:
        raise DataError(
            source, f"model_state_dict[{kernel + 'omega'!r}] does not hold the FFT nodes of the kernel length {length}"
        )
    z = 2 * (1 - omega) / (1 + omega)
    regular = (1 + omega).abs() > 0.1  # z diverges at the Nyquist frequency; compare where it is finite
    stored_z = torch.complex(state[kernel + "z"][:, 0].double(), state[kernel + "z"][:, 1].double())
    if not bool(((stored_z - z).abs() <= 1e-3 * (1 + z.abs()))[regular].all()):
        raise DataError(
            source,
            f"model_state_dict[{kernel + 'z'!r}] is not 2 (1 - omega) / (1 + omega) for the kernel length {length}",
        )


def convert_state_dict(
    state: Mapping[str, torch.Tensor],
    cfg: ReferenceConfig,
    leads: tuple[str, ...] = REFERENCE_MODEL_LEADS,
    source: str = "checkpoint",
    origin: str = "inferred from the tensor shapes",
) -> tuple[SSSDConfig, dict[str, torch.Tensor]]:
    """Check a reference state dict against ``cfg`` and map it to midtecg's ``SSSDECG``.

    ``leads``: the leads of the reference model's input/output channels, in order. Returns the midtecg model
    config and its state dict (float32; views of the input where no copy is needed). Every reference tensor
    is consumed: trainable ones one to one, the per-feature buffers as their single copy, the derived ones
    (Q, omega, z) after checking them."""
    _check_layout(state, reference_layout(cfg), origin, source)
    model_config = _midtecg_config(cfg, source)
    if sorted(leads) != sorted(MODEL_LEADS):
        raise ValueError(f"leads must be an ordering of {MODEL_LEADS}, got {leads}")
    order = torch.tensor([leads.index(name) for name in MODEL_LEADS])
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        used.add(key)
        return state[key].to(torch.float32)

    def wn_conv(target: str, prefix: str, in_order: torch.Tensor | None = None) -> None:
        g, v, b = take(prefix + "weight_g"), take(prefix + "weight_v"), take(prefix + "bias")
        if in_order is not None:
            v = v.index_select(1, in_order)  # the norm is over (in, k) per output channel: unchanged
        out.update(
            {
                target + "parametrizations.weight.original0": g,
                target + "parametrizations.weight.original1": v,
                target + "bias": b,
            }
        )

    def linear(target: str, prefix: str) -> None:
        out.update({target + "weight": take(prefix + "weight"), target + "bias": take(prefix + "bias")})

    wn_conv("input_conv.", "init_conv.0.conv.", in_order=order)
    linear("step_mlp.0.", "residual_layer.fc_t1.")
    linear("step_mlp.2.", "residual_layer.fc_t2.")
    out["cond_embed.labels.weight"] = take("embedding.weight").t()  # y @ E == Linear with weight E^T
    for i in range(cfg.num_res_layers):
        block, target = f"{RESIDUAL_BLOCKS}{i}.", f"blocks.{i}."
        linear(target + "step_proj.", block + "fc_t.")
        wn_conv(target + "conv.", block + "conv_layer.conv.")
        for s4, layer in (("S41.", "s4_1."), ("S42.", "s4_2.")):
            p, kernel, t = block + s4, block + s4 + S4_KERNEL, target + layer
            out[t + "lam"] = _single_copy(state, kernel + "w", 0, source).to(torch.float32)
            out[t + "B"] = _single_copy(state, kernel + "B", 1, source)[0].to(torch.float32)
            out[t + "P"] = _single_copy(state, kernel + "P", 1, source)[0].to(torch.float32)
            _check_derived(state, kernel, cfg.s4_lmax, source)
            used.update(kernel + name for name in ("w", "B", "P", "Q", "omega", "z"))
            out[t + "C"] = take(kernel + "C")
            out[t + "D"] = take(p + "s4_layer.D")[0]
            out[t + "log_dt"] = take(kernel + "log_dt")
            out[t + "out.weight"] = take(p + "s4_layer.output_linear.weight")
            out[t + "out.bias"] = take(p + "s4_layer.output_linear.bias")[:, 0]
            linear(t + "norm.", p + "norm_layer.")
        linear(target + "cond_proj.", block + "fc_label.")
        wn_conv(target + "res_conv.", block + "res_conv.")
        wn_conv(target + "skip_conv.", block + "skip_conv.")
    wn_conv("skip_out.", "final_conv.0.conv.")
    weight, bias = take("final_conv.2.conv.weight"), take("final_conv.2.conv.bias")
    out.update({"out_conv.weight": weight.index_select(0, order), "out_conv.bias": bias.index_select(0, order)})

    left = sorted(set(state) - used)
    if left:
        raise RuntimeError(f"internal: reference tensors not mapped: {left[:3]}")
    _check_against_model(out, model_config, state)
    return model_config, out


def _check_against_model(
    weights: Mapping[str, torch.Tensor], config: SSSDConfig, state: Mapping[str, torch.Tensor]
) -> None:
    """The mapped tensors have exactly the names and shapes of midtecg's model (built on the meta device, no
    memory), and its trainable parameters are as many as the reference's."""
    with torch.device("meta"):
        model = SSSDECG(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))
        raise RuntimeError(f"internal: the mapped tensors do not fit midtecg's SSSDECG: {diff[:3]}")
    trainable = sum(v.numel() for k, v in state.items() if not is_reference_buffer(k))
    if trainable != sum(p.numel() for p in model.parameters()):
        raise RuntimeError("internal: the trainable parameter counts of the reference and midtecg differ")


# --------------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_sssd_ecg(checkpoint: str | Path, out_dir: str | Path, config: str | Path | Mapping | None = None) -> Path:
    """Convert a reference SSSD-ECG checkpoint (``ITER.pkl``) into a midtecg model folder ``out_dir``.

    ``config``: the run's JSON config (path or parsed dict) with ``wavenet_config`` and ``diffusion_config``;
    without it the model configuration is inferred from the tensor shapes and the schedule is the reference's
    published one (T 200, betas 1e-4 to 0.02), at 100 Hz. Conditions are the 71 SCP labels. Returns
    ``out_dir``, holding ``config.json`` and ``model.safetensors``; an existing model there is not replaced."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    existing = [name for name in ("config.json", "model.safetensors") if (out_dir / name).exists()]
    if existing:
        raise FileExistsError(f"{out_dir} already holds {existing[0]}; choose another folder or remove it")
    run = RunConfig() if config is None else read_run_config(config)
    state = load_reference_checkpoint(checkpoint)
    if run.model is None:
        reference, origin = infer_reference_config(state, str(checkpoint)), "inferred from the tensor shapes"
    else:
        reference, origin = run.model, f"of {run.source}"
    model_config, weights = convert_state_dict(state, reference, source=str(checkpoint), origin=origin)
    length = reference.s4_lmax if run.length is None else run.length
    if length > reference.s4_lmax:
        raise DataError(run.source, f"trainset_config.segment_length {length} exceeds s4_lmax {reference.s4_lmax}")
    schedule = NoiseSchedule(num_steps=run.T, kind="linear", beta_start=run.beta_0, beta_end=run.beta_T)
    saved = {
        "midtecg_version": midtecg.__version__,
        "model": model_config.to_dict(),
        "conditions": ConditionEncoder(mode="labels").to_dict(),
        "schedule": schedule.to_dict(),
        "signal": {"fs": run.fs, "length": length, "leads": "I,V1-V6,aVF"},
        "imported": {
            "from": "SSSD-ECG reference checkpoint (AI4HealthUOL/SSSD-ECG)",
            "checkpoint": checkpoint.name,
            "sha256": _sha256(checkpoint),
            "config": origin,
            "wavenet_config": reference.to_dict(),
            "diffusion_config": {"T": run.T, "beta_0": run.beta_0, "beta_T": run.beta_T},
        },
    }
    data = save({k: v.contiguous() for k, v in weights.items()})
    saved[WEIGHTS_SHA256] = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(out_dir / "model.safetensors", data)
    atomic_write_text(out_dir / "config.json", json.dumps(saved, indent=2, sort_keys=True))  # last: marks it complete
    return out_dir
