"""State dicts and checkpoints in the layout of the reference SSSD-ECG code, built independently of midtecg
(names and shapes of ``SSSD_ECG(**wavenet_config).state_dict()``), for the tests of midtecg.sssd_reference and
midtecg.convert."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

# The reference's wavenet_config keys; PUBLISHED is its config_SSSD_ECG.json, SMALL a tiny one.
PUBLISHED = {
    "in_channels": 8,
    "out_channels": 8,
    "num_res_layers": 36,
    "res_channels": 256,
    "skip_channels": 256,
    "diffusion_step_embed_dim_in": 128,
    "diffusion_step_embed_dim_mid": 512,
    "diffusion_step_embed_dim_out": 512,
    "s4_lmax": 1000,
    "s4_d_state": 64,
    "s4_dropout": 0.0,
    "s4_bidirectional": 1,
    "s4_layernorm": 1,
    "label_embed_dim": 128,
    "label_embed_classes": 71,
}
SMALL = dict(
    PUBLISHED,
    num_res_layers=2,
    res_channels=4,
    skip_channels=4,
    diffusion_step_embed_dim_in=16,
    diffusion_step_embed_dim_mid=24,
    diffusion_step_embed_dim_out=24,
    s4_lmax=32,
    s4_d_state=8,
    label_embed_dim=12,
)
KERNEL_BUFFERS = ("omega", "z", "log_dt", "B", "P", "w", "Q")


def fft_nodes(length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """omega and z as the reference's kernel caches them (complex64, stored as real pairs)."""
    omega = torch.tensor(np.exp(-2j * np.pi / length), dtype=torch.complex64) ** torch.arange(length // 2 + 1)
    z = 2 * (1 - omega) / (1 + omega)
    return torch.view_as_real(omega), torch.view_as_real(z)


def reference_state(cfg: dict, param, kernel) -> dict[str, torch.Tensor]:
    """param(shape) -> a trainable tensor; kernel(h, modes, directions, length) -> the S4 kernel's tensors."""
    c, skip, d_in, d_mid, d_out = (
        cfg[k]
        for k in (
            "res_channels",
            "skip_channels",
            "diffusion_step_embed_dim_in",
            "diffusion_step_embed_dim_mid",
            "diffusion_step_embed_dim_out",
        )
    )
    h = 2 * c
    state = {}

    def conv(prefix, c_out, c_in, k=1):  # nn.utils.weight_norm(nn.Conv1d)
        state.update(
            {
                prefix + "weight_g": param((c_out, 1, 1)),
                prefix + "weight_v": param((c_out, c_in, k)),
                prefix + "bias": param((c_out,)),
            }
        )

    def linear(prefix, d_o, d_i):
        state.update({prefix + "weight": param((d_o, d_i)), prefix + "bias": param((d_o,))})

    conv("init_conv.0.conv.", c, cfg["in_channels"])
    state["embedding.weight"] = param((cfg["label_embed_classes"], cfg["label_embed_dim"]))
    linear("residual_layer.fc_t1.", d_mid, d_in)
    linear("residual_layer.fc_t2.", d_out, d_mid)
    for i in range(cfg["num_res_layers"]):
        b = f"residual_layer.residual_blocks.{i}."
        linear(b + "fc_t.", c, d_out)
        for s4 in ("S41.", "S42."):
            state[b + s4 + "s4_layer.D"] = param((1, h))
            for name, value in kernel(h, cfg["s4_d_state"] // 2, 2, cfg["s4_lmax"]).items():
                state[b + s4 + "s4_layer.kernel.kernel." + name] = value
            state[b + s4 + "s4_layer.output_linear.weight"] = param((h, h))
            state[b + s4 + "s4_layer.output_linear.bias"] = param((h, 1))
            state.update({b + s4 + "norm_layer.weight": param((h,)), b + s4 + "norm_layer.bias": param((h,))})
        conv(b + "conv_layer.conv.", h, c, 3)
        conv(b + "res_conv.", c, c)
        conv(b + "skip_conv.", skip, c)
        linear(b + "fc_label.", h, cfg["label_embed_dim"])
    conv("final_conv.0.conv.", skip, skip)
    state["final_conv.2.conv.weight"] = param((cfg["out_channels"], skip, 1))
    state["final_conv.2.conv.bias"] = param((cfg["out_channels"],))
    return state


def legs_nplr(state_size: int, rng: np.random.Generator):
    """HiPPO-LegS in NPLR form from numpy's eig, one mode of each conjugate pair, in a random order and with
    random eigenvector phases (both arbitrary, so the converter must carry the buffers, not assume them)."""
    n = np.arange(state_size)
    r = np.sqrt(2 * n + 1)
    a = -np.where(n[:, None] > n[None, :], np.outer(r, r), 0) - np.diag(n + 1)
    p = np.sqrt(n + 0.5)
    w, v = np.linalg.eig(a + np.outer(p, p))
    keep = np.flatnonzero(w.imag > 0)
    keep = keep[rng.permutation(keep.size)]
    v = v[:, keep] * np.exp(1j * rng.uniform(0, 2 * np.pi, keep.size))
    return w[keep], v.conj().T @ p, v.conj().T @ r


def random_kernel(rng: np.random.Generator):
    def kernel(h, modes, directions, length):
        w, p, b = legs_nplr(2 * modes, rng)
        pairs = lambda x, shape: torch.view_as_real(torch.tensor(x, dtype=torch.complex64).expand(shape)).contiguous()
        omega, z = fft_nodes(length)
        c = torch.tensor(rng.normal(size=(directions, h, modes, 2)), dtype=torch.float32)  # C~, complex normal
        return {
            "C": c,
            "omega": omega,
            "z": z,
            "log_dt": torch.tensor(rng.uniform(math.log(1e-3), math.log(1e-1), h), dtype=torch.float32),
            "B": pairs(b, (1, h, modes)),
            "P": pairs(p, (1, h, modes)),
            "w": pairs(w, (h, modes)),
            "Q": pairs(p.conj(), (1, h, modes)),
        }

    return kernel


def small_state(seed: int = 0, **changes) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    param = lambda shape: torch.tensor(rng.normal(scale=0.5, size=shape), dtype=torch.float32)
    return reference_state(dict(SMALL, **changes), param, random_kernel(rng))


def save_reference_checkpoint(state: dict, path: Path) -> Path:
    """As the reference's train.py: model and Adam state (after one step), torch.save."""
    params = [torch.nn.Parameter(v.clone()) for k, v in state.items() if k.rpartition(".")[2] not in KERNEL_BUFFERS]
    optimizer = torch.optim.Adam(params, lr=2e-4)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    torch.save({"model_state_dict": state, "optimizer_state_dict": optimizer.state_dict()}, path)
    return path
