"""The checkpoint and run-config format of the reference SSSD-ECG code (AI4HealthUOL/SSSD-ECG), read safely.

The reference trains with ``train.py`` and writes ``ITER.pkl`` files with ``torch.save``: a dict holding
``model_state_dict`` (the state dict of its ``SSSD_ECG`` module) and ``optimizer_state_dict`` (Adam; read
safely, then ignored). The model configuration is the run config's ``wavenet_config``, the noise schedule
its ``diffusion_config`` (T, beta_0, beta_T, linear betas). The authors' checkpoint trained on all of PTB-XL
is published on figshare (DOI 10.6084/m9.figshare.21922875).

:func:`load_reference_checkpoint` reads the ``model_state_dict`` without executing anything (only tensors and
plain containers are unpickled, ``torch.load(..., weights_only=True)``), :func:`read_run_config` a run config,
:func:`reference_layout` names the shape of every tensor of ``SSSD_ECG(**wavenet_config)`` and
:func:`infer_reference_config` reads the ``wavenet_config`` back from a state dict's shapes. The reference's
arrays hold the leads ``REFERENCE_ARRAY_LEADS`` and its model takes ``REFERENCE_MODEL_LEADS`` of them.
Mapping the tensors to midtecg's model is :mod:`midtecg.convert`'s job.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from midtecg.data.errors import DataError

__all__ = [
    "REFERENCE_ARRAY_LEADS",
    "REFERENCE_MODEL_LEADS",
    "RESIDUAL_BLOCKS",
    "S4_KERNEL",
    "ReferenceConfig",
    "RunConfig",
    "infer_reference_config",
    "is_reference_buffer",
    "load_reference_checkpoint",
    "read_run_config",
    "reference_layout",
]

REFERENCE_ARRAY_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF")
REFERENCE_MODEL_CHANNELS = (0, 2, 3, 4, 5, 6, 7, 11)  # train.py's index_8
REFERENCE_MODEL_LEADS = tuple(REFERENCE_ARRAY_LEADS[i] for i in REFERENCE_MODEL_CHANNELS)

# Pieces of the state-dict names: block i's tensors start with RESIDUAL_BLOCKS + f"{i}.", those of its two S4
# kernels with RESIDUAL_BLOCKS + f"{i}.S41." + S4_KERNEL (and S42.).
RESIDUAL_BLOCKS = "residual_layer.residual_blocks."
S4_KERNEL = "s4_layer.kernel.kernel."
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
            raise DataError(
                path,
                f"refused: the checkpoint holds a {found.group(1)} object; only tensors and plain "
                "containers are read (torch.load weights_only=True), nothing is executed",
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:\n\n|$)", str(error), re.DOTALL)
        raise DataError(
            path,
            "could not be read as a PyTorch checkpoint (safe unpickler: "
            f"{reason.group(1) if reason else type(error).__name__})",
        ) from None
    except Exception as error:  # noqa: BLE001 - corrupt files raise RuntimeError, EOFError, zip errors...
        raise DataError(path, f"could not be read as a PyTorch checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(obj, Mapping):
        raise DataError(
            path,
            f"expected a dict with 'model_state_dict' (as the reference's train.py writes), got {type(obj).__name__}",
        )
    if "model_state_dict" not in obj:
        raise DataError(
            path,
            f"no 'model_state_dict' entry (found {sorted(map(str, obj))[:6]}); "
            "expected a checkpoint written by the reference's train.py",
        )
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
                raise DataError(
                    where, f"diffusion_config.{key} must be a number{' (integer)' * (kind is int)}, got {value!r}"
                )
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
        out.update(
            {prefix + "bias": (c_out,), prefix + "weight_g": (c_out, 1, 1), prefix + "weight_v": (c_out, c_in, k)}
        )

    def linear(prefix: str, d_out: int, d_in: int) -> None:
        out.update({prefix + "weight": (d_out, d_in), prefix + "bias": (d_out,)})

    wn_conv("init_conv.0.conv.", c, cfg.in_channels)
    if labels:
        out["embedding.weight"] = (cfg.label_embed_classes, cfg.label_embed_dim)
    linear("residual_layer.fc_t1.", cfg.diffusion_step_embed_dim_mid, cfg.diffusion_step_embed_dim_in)
    linear("residual_layer.fc_t2.", cfg.diffusion_step_embed_dim_out, cfg.diffusion_step_embed_dim_mid)
    for i in range(cfg.num_res_layers):
        block = f"{RESIDUAL_BLOCKS}{i}."
        linear(block + "fc_t.", c, cfg.diffusion_step_embed_dim_out)
        for s4 in ("S41.", "S42."):
            p, k = block + s4, block + s4 + S4_KERNEL
            out[p + "s4_layer.D"] = (1, h)
            out.update(
                {
                    k + "C": (directions, h, modes, 2),
                    k + "omega": (nodes, 2),
                    k + "z": (nodes, 2),
                    k + "log_dt": (h,),
                    k + "B": (1, h, modes, 2),
                    k + "P": (1, h, modes, 2),
                    k + "w": (h, modes, 2),
                    k + "Q": (1, h, modes, 2),
                }
            )
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
            raise DataError(
                source,
                f"model_state_dict lacks {key!r}, so the configuration cannot be inferred; "
                "is this an SSSD-ECG checkpoint? (--config RUN_CONFIG.json names it)",
            )
        if state[key].dim() != ndim:
            raise DataError(
                source, f"model_state_dict[{key!r}] has shape {tuple(state[key].shape)}, expected {ndim} dimensions"
            )
        return tuple(state[key].shape)

    res, in_ch, _ = shape("init_conv.0.conv.weight_v", 3)
    out_ch, skip, _ = shape("final_conv.2.conv.weight", 3)
    mid, dim_in = shape("residual_layer.fc_t1.weight", 2)
    dim_out, _ = shape("residual_layer.fc_t2.weight", 2)
    blocks = {int(m.group(1)) for key in state if (m := re.match(re.escape(RESIDUAL_BLOCKS) + r"(\d+)\.", key))}
    kernel = f"{RESIDUAL_BLOCKS}0.S41.{S4_KERNEL}"
    directions, _, modes, _ = shape(kernel + "C", 4)
    shape(kernel + "omega", 2)
    classes, label_dim = shape("embedding.weight", 2) if "embedding.weight" in state else (0, 128)
    return ReferenceConfig(
        in_channels=in_ch,
        out_channels=out_ch,
        res_channels=res,
        skip_channels=skip,
        num_res_layers=max(blocks) + 1 if blocks else 0,
        diffusion_step_embed_dim_in=dim_in,
        diffusion_step_embed_dim_mid=mid,
        diffusion_step_embed_dim_out=dim_out,
        s4_lmax=_fft_length(state[kernel + "omega"], kernel + "omega", source),
        s4_d_state=2 * modes,
        s4_bidirectional=directions == 2,
        s4_layernorm=f"{RESIDUAL_BLOCKS}0.S41.norm_layer.weight" in state,
        label_embed_classes=classes,
        label_embed_dim=label_dim,
    )


def _fft_length(omega: torch.Tensor, key: str, source: str) -> int:
    """The kernel length L whose FFT nodes omega_k = exp(-2 pi i k / L), k <= L/2, are stored in ``omega``."""
    rows = omega.shape[0]
    if rows < 2 or omega.shape[1] != 2:
        raise DataError(source, f"model_state_dict[{key!r}] has shape {tuple(omega.shape)}: not FFT nodes")
    angle = math.atan2(float(omega[1, 1]), float(omega[1, 0]))
    length = round(-2 * math.pi / angle) if angle < 0 else 0
    if length not in (2 * rows - 2, 2 * rows - 1):
        raise DataError(
            source,
            f"model_state_dict[{key!r}] does not hold the FFT nodes of any length with {rows} non-negative frequencies",
        )
    return length


def is_reference_buffer(key: str) -> bool:
    """Whether a reference state-dict entry is a buffer (the S4 kernel's frozen A, B, step size, FFT nodes)."""
    prefix, _, name = key.rpartition(".")
    return prefix.endswith(S4_KERNEL.rstrip(".")) and name in _KERNEL_BUFFERS
