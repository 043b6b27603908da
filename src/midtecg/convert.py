"""Import checkpoints of the reference SSSD-ECG code (AI4HealthUOL/SSSD-ECG) as midtecg model folders.

The reference trains with ``train.py`` and writes ``ITER.pkl`` files with ``torch.save``: a dict holding
``model_state_dict`` (the state dict of its ``SSSD_ECG`` module) and ``optimizer_state_dict`` (Adam; read
safely, then ignored). The model configuration is the run config's ``wavenet_config``, the noise schedule
its ``diffusion_config`` (T, beta_0, beta_T, linear betas). The authors' checkpoint trained on all of PTB-XL
is published on figshare (DOI 10.6084/m9.figshare.21922875).

``import_sssd_ecg(checkpoint, out_dir, config=None)`` writes ``config.json`` + ``model.safetensors``, the
format of midtecg's own checkpoints, so ``midtecg generate --model``, ``midtecg.sample`` and ``midtecg
evaluate --model`` load the result like any other model. Nothing but tensors and plain containers is
unpickled (``torch.load(..., weights_only=True)``), and every tensor is checked before it is used.

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
import pickle
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import save

import midtecg
from midtecg.data.conditions import ConditionEncoder
from midtecg.data.errors import DataError
from midtecg.data.labels import NUM_LABELS
from midtecg.data.leads import MODEL_LEADS
from midtecg.diffusion import NoiseSchedule
from midtecg.io.arrays import atomic_write_bytes, atomic_write_text
from midtecg.models.sssd import SSSDECG, ConditionGroup, SSSDConfig
from midtecg.training.checkpoint import WEIGHTS_SHA256

__all__ = [
    "REFERENCE_ARRAY_LEADS", "REFERENCE_MODEL_LEADS", "ReferenceConfig", "RunConfig", "convert_state_dict",
    "import_sssd_ecg", "infer_reference_config", "is_reference_buffer", "load_reference_checkpoint",
    "read_run_config", "reference_layout",
]

REFERENCE_ARRAY_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF")
REFERENCE_MODEL_CHANNELS = (0, 2, 3, 4, 5, 6, 7, 11)  # train.py's index_8
REFERENCE_MODEL_LEADS = tuple(REFERENCE_ARRAY_LEADS[i] for i in REFERENCE_MODEL_CHANNELS)

_BLOCKS = "residual_layer.residual_blocks."
_KERNEL = "s4_layer.kernel.kernel."
_KERNEL_BUFFERS = ("omega", "z", "log_dt", "B", "P", "w", "Q")  # registered as buffers: not trained
_CONSTRUCTOR_DEFAULTS = {"label_embed_classes": 0, "label_embed_dim": 128}  # SSSD_ECG's keyword defaults


@dataclass(frozen=True)
class ReferenceConfig:
    """The entries of the reference's ``wavenet_config`` that decide the tensors (names as there)."""

    in_channels: int = 8
    out_channels: int = 8
    res_channels: int = 256
    skip_channels: int = 256
    num_res_layers: int = 36
    diffusion_step_embed_dim_in: int = 128
    diffusion_step_embed_dim_mid: int = 512
    diffusion_step_embed_dim_out: int = 512
    s4_lmax: int = 1000
    s4_d_state: int = 64
    s4_bidirectional: bool = True
    s4_layernorm: bool = True
    label_embed_classes: int = 71
    label_embed_dim: int = 128

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "wavenet_config") -> ReferenceConfig:
        """From a ``wavenet_config`` dict; keys the reference's constructor requires must be there, other
        keys (``s4_dropout``, which only matters in training) are ignored."""
        values = {}
        for f in fields(cls):
            value = data.get(f.name, _CONSTRUCTOR_DEFAULTS.get(f.name))
            if value is None:
                raise DataError(where, f"lacks {f.name!r}")
            if f.type == "bool":
                if value not in (0, 1, True, False):
                    raise DataError(where, f"{f.name} must be 0 or 1, got {value!r}")
                value = bool(value)
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DataError(where, f"{f.name} must be a non-negative integer, got {value!r}")
            values[f.name] = value
        return cls(**values)

    def to_dict(self) -> dict:
        return {k: int(v) if isinstance(v, bool) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RunConfig:
    """What a reference run config says beyond the model: schedule, rate, signal length.

    ``model`` None: infer the model configuration from the tensor shapes. Defaults are the reference's
    published ``diffusion_config`` (T 200, betas 1e-4 to 0.02) and PTB-XL at 100 Hz; ``length`` None: the
    S4 length ``s4_lmax`` (1000)."""

    model: ReferenceConfig | None = None
    T: int = 200  # the reference's key names
    beta_0: float = 1e-4
    beta_T: float = 0.02
    fs: int = 100
    length: int | None = None
    source: str = "defaults (the reference's published diffusion_config, 100 Hz)"


def load_reference_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``model_state_dict`` of a reference checkpoint, read without executing anything.

    Raises ``DataError`` naming the file when it holds anything but tensors and plain containers (which
    ``weights_only=True`` refuses to unpickle), when it is not a dict with ``model_state_dict``, or when that
    holds a value that is not a tensor (naming the key)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise DataError(path, f"refused: the checkpoint holds a {found.group(1)} object; only tensors and plain "
                                  "containers are read (torch.load weights_only=True), nothing is executed") from None
        reason = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:\n\n|$)", str(error), re.DOTALL)
        raise DataError(path, "could not be read as a PyTorch checkpoint (safe unpickler: "
                              f"{reason.group(1) if reason else type(error).__name__})") from None
    except Exception as error:  # noqa: BLE001 - corrupt files raise RuntimeError, EOFError, zip errors...
        raise DataError(path, f"could not be read as a PyTorch checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(obj, Mapping):
        raise DataError(path, f"expected a dict with 'model_state_dict' (as the reference's train.py writes), "
                              f"got {type(obj).__name__}")
    if "model_state_dict" not in obj:
        raise DataError(path, f"no 'model_state_dict' entry (found {sorted(map(str, obj))[:6]}); "
                              "expected a checkpoint written by the reference's train.py")
    state = obj["model_state_dict"]
    if not isinstance(state, Mapping):
        raise DataError(path, f"'model_state_dict' must be a dict of tensors, got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise DataError(path, f"model_state_dict has a non-string key {key!r}")
        if not isinstance(value, torch.Tensor):
            raise DataError(path, f"model_state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
    return {key: value.detach() for key, value in state.items()}


def read_run_config(config: str | Path | Mapping) -> RunConfig:
    """A reference run config (JSON file or its parsed dict): ``wavenet_config``, ``diffusion_config`` and
    ``trainset_config`` (``sampling_rate``, ``segment_length``); the latter two are optional.

    The reference's own ``config_SSSD_ECG.json`` has trailing commas (not strict JSON); they are accepted."""
    where = "run config"
    if not isinstance(config, Mapping):
        where = str(config)
        text = Path(config).read_text()
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            try:
                config = json.loads(re.sub(r",(\s*[}\]])", r"\1", text))
            except json.JSONDecodeError:
                raise DataError(where, f"is not valid JSON: {error}") from None
    if not isinstance(config, Mapping) or not isinstance(config.get("wavenet_config"), Mapping):
        raise DataError(where, "has no 'wavenet_config' section (the reference's model settings)")
    model = ReferenceConfig.from_dict(config["wavenet_config"], f"{where}: wavenet_config")
    values: dict = {"model": model, "source": where}
    diffusion = config.get("diffusion_config")
    if diffusion is not None:
        for key, kind in (("T", int), ("beta_0", float), ("beta_T", float)):
            value = diffusion.get(key) if isinstance(diffusion, Mapping) else None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                raise DataError(where, f"diffusion_config.{key} must be a number{' (integer)' * (kind is int)}, "
                                       f"got {value!r}")
            values[key] = kind(value)
    trainset = config.get("trainset_config") or {}
    for key, name in (("sampling_rate", "fs"), ("segment_length", "length")):
        if key in trainset:
            value = trainset[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(where, f"trainset_config.{key} must be a positive integer, got {value!r}")
            values[name] = value
    return RunConfig(**values)


# --------------------------------------------------------------------------------------------------------
# The reference's layout
# --------------------------------------------------------------------------------------------------------

def reference_layout(cfg: ReferenceConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the state dict of the reference's ``SSSD_ECG(**wavenet_config)``."""
    c, h, skip = cfg.res_channels, 2 * cfg.res_channels, cfg.skip_channels
    modes, directions, nodes = cfg.s4_d_state // 2, 2 if cfg.s4_bidirectional else 1, cfg.s4_lmax // 2 + 1
    labels = cfg.label_embed_classes > 0
    out: dict[str, tuple[int, ...]] = {}

    def wn_conv(prefix: str, c_out: int, c_in: int, k: int = 1) -> None:
        out.update({prefix + "bias": (c_out,), prefix + "weight_g": (c_out, 1, 1),
                    prefix + "weight_v": (c_out, c_in, k)})

    def linear(prefix: str, d_out: int, d_in: int) -> None:
        out.update({prefix + "weight": (d_out, d_in), prefix + "bias": (d_out,)})

    wn_conv("init_conv.0.conv.", c, cfg.in_channels)
    if labels:
        out["embedding.weight"] = (cfg.label_embed_classes, cfg.label_embed_dim)
    linear("residual_layer.fc_t1.", cfg.diffusion_step_embed_dim_mid, cfg.diffusion_step_embed_dim_in)
    linear("residual_layer.fc_t2.", cfg.diffusion_step_embed_dim_out, cfg.diffusion_step_embed_dim_mid)
    for i in range(cfg.num_res_layers):
        block = f"{_BLOCKS}{i}."
        linear(block + "fc_t.", c, cfg.diffusion_step_embed_dim_out)
        for s4 in ("S41.", "S42."):
            p, k = block + s4, block + s4 + _KERNEL
            out[p + "s4_layer.D"] = (1, h)
            out.update({k + "C": (directions, h, modes, 2), k + "omega": (nodes, 2), k + "z": (nodes, 2),
                        k + "log_dt": (h,), k + "B": (1, h, modes, 2), k + "P": (1, h, modes, 2),
                        k + "w": (h, modes, 2), k + "Q": (1, h, modes, 2)})
            out.update({p + "s4_layer.output_linear.weight": (h, h), p + "s4_layer.output_linear.bias": (h, 1)})
            if cfg.s4_layernorm:
                out.update({p + "norm_layer.weight": (h,), p + "norm_layer.bias": (h,)})
        wn_conv(block + "conv_layer.conv.", h, c, 3)
        wn_conv(block + "res_conv.", c, c)
        wn_conv(block + "skip_conv.", skip, c)
        if labels:
            linear(block + "fc_label.", h, cfg.label_embed_dim)
    wn_conv("final_conv.0.conv.", skip, skip)
    out.update({"final_conv.2.conv.weight": (cfg.out_channels, skip, 1), "final_conv.2.conv.bias": (cfg.out_channels,)})
    return out


def infer_reference_config(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> ReferenceConfig:
    """The ``wavenet_config`` a reference state dict was built with, read from its tensor shapes."""

    def shape(key: str, ndim: int) -> tuple[int, ...]:
        if key not in state:
            raise DataError(source, f"model_state_dict lacks {key!r}, so the configuration cannot be inferred; "
                                    "is this an SSSD-ECG checkpoint? (--config RUN_CONFIG.json names it)")
        if state[key].dim() != ndim:
            raise DataError(source, f"model_state_dict[{key!r}] has shape {tuple(state[key].shape)}, "
                                    f"expected {ndim} dimensions")
        return tuple(state[key].shape)

    res, in_ch, _ = shape("init_conv.0.conv.weight_v", 3)
    out_ch, skip, _ = shape("final_conv.2.conv.weight", 3)
    mid, dim_in = shape("residual_layer.fc_t1.weight", 2)
    dim_out, _ = shape("residual_layer.fc_t2.weight", 2)
    blocks = {int(m.group(1)) for key in state if (m := re.match(re.escape(_BLOCKS) + r"(\d+)\.", key))}
    kernel = f"{_BLOCKS}0.S41.{_KERNEL}"
    directions, _, modes, _ = shape(kernel + "C", 4)
    shape(kernel + "omega", 2)
    classes, label_dim = shape("embedding.weight", 2) if "embedding.weight" in state else (0, 128)
    return ReferenceConfig(
        in_channels=in_ch, out_channels=out_ch, res_channels=res, skip_channels=skip,
        num_res_layers=max(blocks) + 1 if blocks else 0, diffusion_step_embed_dim_in=dim_in,
        diffusion_step_embed_dim_mid=mid, diffusion_step_embed_dim_out=dim_out,
        s4_lmax=_fft_length(state[kernel + "omega"], kernel + "omega", source), s4_d_state=2 * modes,
        s4_bidirectional=directions == 2, s4_layernorm=f"{_BLOCKS}0.S41.norm_layer.weight" in state,
        label_embed_classes=classes, label_embed_dim=label_dim,
    )


def _fft_length(omega: torch.Tensor, key: str, source: str) -> int:
    """The kernel length L whose FFT nodes omega_k = exp(-2 pi i k / L), k <= L/2, are stored in ``omega``."""
    rows = omega.shape[0]
    if rows < 2 or omega.shape[1] != 2:
        raise DataError(source, f"model_state_dict[{key!r}] has shape {tuple(omega.shape)}: not FFT nodes")
    angle = math.atan2(float(omega[1, 1]), float(omega[1, 0]))
    length = round(-2 * math.pi / angle) if angle < 0 else 0
    if length not in (2 * rows - 2, 2 * rows - 1):
        raise DataError(source, f"model_state_dict[{key!r}] does not hold the FFT nodes of any length "
                                f"with {rows} non-negative frequencies")
    return length


def is_reference_buffer(key: str) -> bool:
    """Whether a reference state-dict entry is a buffer (the S4 kernel's frozen A, B, step size, FFT nodes)."""
    prefix, _, name = key.rpartition(".")
    return prefix.endswith(_KERNEL.rstrip(".")) and name in _KERNEL_BUFFERS


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
                problems.append(f"model_state_dict[{key!r}] is a {value.dtype} {value.layout} tensor, "
                                "expected dense floating point")
            elif not key.endswith(_KERNEL + "z") and not bool(torch.isfinite(value).all()):
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
        ("diffusion_step_embed_dim_mid", cfg.diffusion_step_embed_dim_mid == cfg.diffusion_step_embed_dim_out,
         f"diffusion_step_embed_dim_out ({cfg.diffusion_step_embed_dim_out})"),
        ("diffusion_step_embed_dim_in", cfg.diffusion_step_embed_dim_in % 2 == 0
         and cfg.diffusion_step_embed_dim_in >= 4, "an even number >= 4"),
        ("s4_bidirectional", cfg.s4_bidirectional, "1"),
        ("s4_layernorm", cfg.s4_layernorm, "1"),
        ("s4_lmax", cfg.s4_lmax % 2 == 0 and cfg.s4_lmax > 0, "a positive even length"),
        ("s4_d_state", cfg.s4_d_state % 2 == 0 and cfg.s4_d_state > 0, "a positive even state size"),
        ("label_embed_classes", cfg.label_embed_classes == NUM_LABELS, f"{NUM_LABELS} (the SCP statements)"),
        ("num_res_layers", cfg.num_res_layers > 0, "at least 1"),
    ]
    for key, ok, expected in required:
        if not ok:
            raise DataError(source, f"wavenet_config {key} = {getattr(cfg, key)!r} cannot be imported: midtecg's "
                                    f"SSSD-ECG needs {expected}")
    return SSSDConfig(
        in_leads=len(MODEL_LEADS), length=cfg.s4_lmax, channels=cfg.res_channels, blocks=cfg.num_res_layers,
        state_size=cfg.s4_d_state, s4_variant="s4", step_embed_dim=cfg.diffusion_step_embed_dim_in,
        step_hidden=cfg.diffusion_step_embed_dim_out,
        condition_groups=(ConditionGroup("labels", NUM_LABELS, cfg.label_embed_dim),), null_conditions=False,
    )


def _single_copy(state: Mapping[str, torch.Tensor], key: str, feature_dim: int, source: str) -> torch.Tensor:
    """The one value that every feature's copy of a per-feature buffer holds (exactly), or a DataError."""
    copies = state[key].movedim(feature_dim, 0).flatten(1)
    differs = (copies != copies[:1]).any(dim=1)
    if bool(differs.any()):
        feature = int(differs.nonzero()[0])
        gap = float((copies[feature] - copies[0]).abs().max())
        raise DataError(source, f"model_state_dict[{key!r}]: the reference stores a copy per feature and midtecg one "
                                f"per layer, but feature {feature} differs from feature 0 (by up to {gap:.3g}); "
                                "only checkpoints with frozen A and B (the reference's default) can be imported")
    return state[key].select(feature_dim, 0)


def _check_derived(state: Mapping[str, torch.Tensor], kernel: str, length: int, source: str) -> None:
    """Q = conj(P) exactly; omega and z are the FFT nodes of ``length`` and their bilinear transform."""
    p, q = state[kernel + "P"], state[kernel + "Q"]
    if not (torch.equal(q[..., 0], p[..., 0]) and torch.equal(q[..., 1], -p[..., 1])):
        raise DataError(source, f"model_state_dict[{kernel + 'Q'!r}] is not the complex conjugate of "
                                f"{kernel + 'P'!r}; midtecg's S4 assumes A = Lambda - P P^*")
    k = torch.arange(length // 2 + 1, dtype=torch.float64)
    omega = torch.polar(torch.ones_like(k), -2 * math.pi * k / length)
    stored = torch.complex(state[kernel + "omega"][:, 0].double(), state[kernel + "omega"][:, 1].double())
    if float((stored - omega).abs().max()) > 1e-3:
        raise DataError(source, f"model_state_dict[{kernel + 'omega'!r}] does not hold the FFT nodes of the "
                                f"kernel length {length}")
    z = 2 * (1 - omega) / (1 + omega)
    regular = (1 + omega).abs() > 0.1  # z diverges at the Nyquist frequency; compare where it is finite
    stored_z = torch.complex(state[kernel + "z"][:, 0].double(), state[kernel + "z"][:, 1].double())
    if not bool(((stored_z - z).abs() <= 1e-3 * (1 + z.abs()))[regular].all()):
        raise DataError(source, f"model_state_dict[{kernel + 'z'!r}] is not 2 (1 - omega) / (1 + omega) for the "
                                f"kernel length {length}")


def convert_state_dict(state: Mapping[str, torch.Tensor], cfg: ReferenceConfig,
                       leads: tuple[str, ...] = REFERENCE_MODEL_LEADS, source: str = "checkpoint",
                       origin: str = "inferred from the tensor shapes") -> tuple[SSSDConfig, dict[str, torch.Tensor]]:
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
        out.update({target + "parametrizations.weight.original0": g, target + "parametrizations.weight.original1": v,
                    target + "bias": b})

    def linear(target: str, prefix: str) -> None:
        out.update({target + "weight": take(prefix + "weight"), target + "bias": take(prefix + "bias")})

    wn_conv("input_conv.", "init_conv.0.conv.", in_order=order)
    linear("step_mlp.0.", "residual_layer.fc_t1.")
    linear("step_mlp.2.", "residual_layer.fc_t2.")
    out["cond_embed.labels.weight"] = take("embedding.weight").t()  # y @ E == Linear with weight E^T
    for i in range(cfg.num_res_layers):
        block, target = f"{_BLOCKS}{i}.", f"blocks.{i}."
        linear(target + "step_proj.", block + "fc_t.")
        wn_conv(target + "conv.", block + "conv_layer.conv.")
        for s4, layer in (("S41.", "s4_1."), ("S42.", "s4_2.")):
            p, kernel, t = block + s4, block + s4 + _KERNEL, target + layer
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


def _check_against_model(weights: Mapping[str, torch.Tensor], config: SSSDConfig,
                         state: Mapping[str, torch.Tensor]) -> None:
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
