"""Importing reference SSSD-ECG checkpoints: the mapping, refusals, the command, and the forward pass against an
independent float64 implementation of the reference network computed from the raw reference tensors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from midtecg.cli import main
from midtecg.convert import (
    REFERENCE_MODEL_LEADS,
    ReferenceConfig,
    convert_state_dict,
    import_sssd_ecg,
    infer_reference_config,
    load_reference_checkpoint,
)
from midtecg.data.errors import DataError
from midtecg.data.leads import MODEL_LEADS
from midtecg.generate import conditions_from_request
from midtecg.models.config import SSSDConfig
from midtecg.models.sssd import SSSDECG
from midtecg.sample import load_generator, sample
from reference_checkpoints import (
    KERNEL_BUFFERS,
    PUBLISHED,
    SMALL,
    fft_nodes,
    reference_state,
    save_reference_checkpoint,
    small_state,
)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> tuple[dict, Path]:
    state = small_state()
    return state, save_reference_checkpoint(state, tmp_path_factory.mktemp("ref") / "100000.pkl")


@pytest.fixture(scope="module")
def small_model(small_checkpoint, tmp_path_factory) -> Path:
    return import_sssd_ecg(small_checkpoint[1], tmp_path_factory.mktemp("imported") / "model")


# --------------------------------------------------------------------------------------------------------
# The reference network, written from method.md section 2 on the raw reference tensors (float64)
# --------------------------------------------------------------------------------------------------------


def _complex(x: torch.Tensor) -> torch.Tensor:
    return torch.complex(x[..., 0], x[..., 1])


def s4_kernels(s: dict, k: str, length: int) -> torch.Tensor:
    """Time-domain kernels (directions, H, L) of one S4 layer: the full-state (conjugate modes included)
    bilinear SSM with A = diag(w) - P Q^T, C = C~ (I - A_bar^L)^-1, k_l = C A_bar^l B_bar."""
    full = lambda x: torch.cat([x, x.conj()], dim=-1)
    w, p, q, b = (
        full(_complex(s[k + "w"])),
        full(_complex(s[k + "P"])[0]),
        full(_complex(s[k + "Q"])[0]),
        full(_complex(s[k + "B"])[0]),
    )  # (H, N)
    c_tilde = full(_complex(s[k + "C"]))  # (directions, H, N)
    dt = torch.exp(s[k + "log_dt"]).to(torch.complex128)[:, None, None]
    a = torch.diag_embed(w) - p[:, :, None] * q[:, None, :]
    eye = torch.eye(a.shape[-1], dtype=torch.complex128)
    a_bar = torch.linalg.solve(eye - dt / 2 * a, eye + dt / 2 * a)
    b_bar = torch.linalg.solve(eye - dt / 2 * a, dt[..., 0] * b)
    c = torch.linalg.solve((eye - torch.linalg.matrix_power(a_bar, length)).mT, c_tilde.unsqueeze(-1))[..., 0]
    taps, x = [], b_bar
    for _ in range(length):
        taps.append(torch.einsum("chn,hn->ch", c, x))
        x = torch.einsum("hmn,hn->hm", a_bar, x)
    k_all = torch.stack(taps, dim=-1)
    assert k_all.imag.abs().max() < 1e-8 * k_all.real.abs().max()
    return k_all.real


def s4_layer(u: torch.Tensor, s: dict, p: str, length: int) -> torch.Tensor:
    """LayerNorm(u + W GELU(K * u + D u) + b), K * u the bidirectional convolution written out in time:
    y[n] = sum_{j <= n} k0[n - j] u[j] + sum_{j > n} k1[j - n - 1] u[j]."""
    k = s4_kernels(s, p + "s4_layer.kernel.kernel.", length)
    n = torch.arange(u.shape[-1])
    lag = n[:, None] - n[None, :]
    toeplitz = torch.where(lag >= 0, k[0][:, lag.clamp(min=0)], k[1][:, (-lag - 1).clamp(min=0)])  # (H, L, L)
    y = torch.einsum("hnj,bhj->bhn", toeplitz, u) + s[p + "s4_layer.D"][0][:, None] * u
    y = s[p + "s4_layer.output_linear.weight"] @ F.gelu(y) + s[p + "s4_layer.output_linear.bias"]
    return F.layer_norm(
        (y + u).transpose(1, 2), (u.shape[1],), s[p + "norm_layer.weight"], s[p + "norm_layer.bias"]
    ).transpose(1, 2)


def wn_conv(x: torch.Tensor, s: dict, p: str, padding: int = 0) -> torch.Tensor:
    v = s[p + "weight_v"]
    weight = s[p + "weight_g"] * v / v.flatten(1).norm(dim=1)[:, None, None]
    return F.conv1d(x, weight, s[p + "bias"], padding=padding)


def reference_forward(state: dict, x: torch.Tensor, labels: torch.Tensor, t: torch.Tensor, length: int) -> torch.Tensor:
    s = {k: v.double() for k, v in state.items()}
    swish = lambda v: v * torch.sigmoid(v)
    half = s["residual_layer.fc_t1.weight"].shape[1] // 2  # the sinusoidal code is float32 in the reference
    angles = t.float()[:, None] * torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))[None]
    step = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).double()
    step = swish(F.linear(step, s["residual_layer.fc_t1.weight"], s["residual_layer.fc_t1.bias"]))
    step = swish(F.linear(step, s["residual_layer.fc_t2.weight"], s["residual_layer.fc_t2.bias"]))
    cond = labels.double() @ s["embedding.weight"]
    h = F.relu(wn_conv(x.double(), s, "init_conv.0.conv."))
    blocks = 1 + max(int(k.split(".")[2]) for k in s if k.startswith("residual_layer.residual_blocks."))
    channels, skip = h.shape[1], 0
    for i in range(blocks):
        b = f"residual_layer.residual_blocks.{i}."
        z = h + F.linear(step, s[b + "fc_t.weight"], s[b + "fc_t.bias"])[:, :, None]
        z = s4_layer(wn_conv(z, s, b + "conv_layer.conv.", padding=1), s, b + "S41.", length)
        z = z + F.linear(cond, s[b + "fc_label.weight"], s[b + "fc_label.bias"])[:, :, None]
        z = s4_layer(z, s, b + "S42.", length)
        gated = torch.tanh(z[:, :channels]) * torch.sigmoid(z[:, channels:])
        skip = skip + wn_conv(gated, s, b + "skip_conv.")
        h = (h + wn_conv(gated, s, b + "res_conv.")) * math.sqrt(0.5)
    y = F.relu(wn_conv(skip * math.sqrt(1 / blocks), s, "final_conv.0.conv."))
    return F.conv1d(y, s["final_conv.2.conv.weight"], s["final_conv.2.conv.bias"])


def random_inputs(batch: int = 3, length: int = SMALL["s4_lmax"], seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 8, length, generator=gen)
    labels = (torch.rand(batch, 71, generator=gen) < 0.1).float()
    return x, labels, torch.tensor([0, 57, 199][:batch])


# --------------------------------------------------------------------------------------------------------
# Conversion and the forward pass
# --------------------------------------------------------------------------------------------------------


def test_converted_model_computes_the_reference_function(small_checkpoint, small_model):
    state, _ = small_checkpoint
    generator = load_generator(small_model, device="cpu")
    config = json.loads((small_model / "config.json").read_text())
    assert config["conditions"]["mode"] == "labels" and config["signal"] == {
        "fs": 100,
        "length": 32,
        "leads": "I,V1-V6,aVF",
    }
    assert config["schedule"] == {
        "num_steps": 200,
        "kind": "linear",
        "beta_start": 1e-4,
        "beta_end": 0.02,
        "cosine_s": 0.008,
        "zero_terminal_snr": False,
    }  # the reference's schedule
    assert config["imported"]["wavenet_config"] == {k: v for k, v in SMALL.items() if k != "s4_dropout"}
    x, labels, t = random_inputs()
    expected = reference_forward(state, x, labels, t, SMALL["s4_lmax"])
    model = generator.model
    with torch.no_grad():
        got32 = model(x, t, {"labels": labels})
        got64 = model.double()(x.double(), t, {"labels": labels.double()})
    scale = expected.abs().max()
    assert scale > 0.1  # a non-trivial output
    assert (got64 - expected).abs().max() / scale < 1e-12
    assert (got32.double() - expected).abs().max() / scale < 1e-4


def test_lead_order_permutes_the_input_and_output_convs(small_checkpoint):
    assert REFERENCE_MODEL_LEADS == MODEL_LEADS  # the published model needs no permutation
    state, _ = small_checkpoint
    leads = ("V3", "I", "aVF", "V1", "V6", "V2", "V5", "V4")  # a hypothetical reference channel order
    config, weights = convert_state_dict(state, infer_reference_config(state), leads=leads)
    model = SSSDECG(config)
    model.load_state_dict(weights)
    x, labels, t = random_inputs(batch=2)
    to_reference = [MODEL_LEADS.index(name) for name in leads]
    expected = reference_forward(state, x[:, to_reference], labels, t, SMALL["s4_lmax"])
    with torch.no_grad():
        got = model.double()(x.double(), t, {"labels": labels.double()})
    assert (got[:, to_reference] - expected).abs().max() / expected.abs().max() < 1e-12


def test_published_configuration_maps_every_tensor_one_to_one(tmp_path):
    """36 x 256, N 64, L 1000 with stride-0 tensors (one distinct constant each): a tiny file, no copies."""
    counter = iter(range(1, 1 << 20))
    param = lambda shape: torch.tensor(float(next(counter))).expand(shape)
    omega, z = fft_nodes(1000)

    def kernel(h, modes, directions, length):
        p = float(next(counter))
        return {
            "C": param((directions, h, modes, 2)),
            "omega": omega,
            "z": z,
            "log_dt": param((h,)),
            "B": param((1, h, modes, 2)),
            "P": torch.tensor(p).expand(1, h, modes, 2),
            "w": param((h, modes, 2)),
            "Q": torch.tensor([p, -p]).expand(1, h, modes, 2),
        }

    state = reference_state(PUBLISHED, param, kernel)
    path = tmp_path / "published.pkl"
    torch.save({"model_state_dict": state}, path)
    assert path.stat().st_size < 2_000_000
    loaded = load_reference_checkpoint(path)
    reference = infer_reference_config(loaded)
    assert reference == ReferenceConfig.from_dict(PUBLISHED)
    config, weights = convert_state_dict(loaded, reference)
    assert config == SSSDConfig()  # midtecg's published configuration
    with torch.device("meta"):
        trainable = sum(p.numel() for p in SSSDECG(config).parameters())
    is_buffer = lambda key: key.rpartition(".")[2] in KERNEL_BUFFERS and ".kernel.kernel." in key
    assert trainable == sum(v.numel() for k, v in state.items() if not is_buffer(k)) == 50_202_504
    # Every tensor is one constant: each reference tensor (but the derived Q, omega, z) lands in exactly one
    # midtecg tensor, with all its values (trainable ones) or its single per-layer copy (the buffers).
    source = {float(v[(0,) * v.dim()]): k for k, v in state.items() if k.rpartition(".")[2] not in ("Q", "omega", "z")}
    targets = {}
    for key, value in weights.items():
        assert value.dtype == torch.float32 and float(value.min()) == float(value.max()), key
        targets.setdefault(float(value[(0,) * value.dim()]), []).append(key)
    assert sorted(targets) == sorted(source) and all(len(keys) == 1 for keys in targets.values())
    for constant, (key,) in targets.items():
        ref = state[source[constant]]
        per_feature = source[constant].rpartition(".")[2] in ("w", "B", "P")
        assert weights[key].numel() == (ref.numel() // 512 if per_feature else ref.numel()), key


def test_run_config_json_with_the_references_trailing_commas(small_checkpoint, tmp_path):
    _, checkpoint = small_checkpoint
    run = {
        "diffusion_config": {"T": 50, "beta_0": 0.0002, "beta_T": 0.03},
        "wavenet_config": SMALL,
        "train_config": {"batch_size": 8},
        "trainset_config": {"segment_length": 24, "sampling_rate": 100},
    }
    text = json.dumps(run, indent=1).replace('"batch_size": 8', '"batch_size": 8,')  # as config_SSSD_ECG.json
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    (tmp_path / "config.json").write_text(text)
    out = import_sssd_ecg(checkpoint, tmp_path / "model", config=tmp_path / "config.json")
    saved = json.loads((out / "config.json").read_text())
    assert saved["schedule"]["num_steps"] == 50 and saved["schedule"]["beta_end"] == 0.03
    assert saved["signal"]["length"] == 24 and saved["model"]["length"] == 32
    ecgs = sample(
        load_generator(out, device="cpu"),
        conditions_from_request(n=2, labels="NORM"),
        sampler="ddim",
        steps=3,
        progress=False,
    )
    assert ecgs.signals.shape == (2, 12, 24) and np.isfinite(ecgs.signals).all()

    # a run config that does not describe the checkpoint: the first mismatching tensor is named
    wrong = dict(run, wavenet_config=dict(SMALL, res_channels=8, skip_channels=8))
    with pytest.raises(DataError, match=r"'init_conv\.0\.conv\.bias'.*\(4,\), expected \(8,\)"):
        import_sssd_ecg(checkpoint, tmp_path / "wrong", config=wrong)
    with pytest.raises(DataError, match="wavenet_config"):
        import_sssd_ecg(checkpoint, tmp_path / "wrong", config={"diffusion_config": run["diffusion_config"]})
    with pytest.raises(DataError, match="lacks 's4_lmax'"):
        import_sssd_ecg(
            checkpoint,
            tmp_path / "wrong",
            config={"wavenet_config": {k: v for k, v in SMALL.items() if k != "s4_lmax"}},
        )
    with pytest.raises(DataError, match="segment_length 40 exceeds s4_lmax 32"):
        import_sssd_ecg(checkpoint, tmp_path / "wrong", config=dict(run, trainset_config={"segment_length": 40}))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="list.json: has no 'wavenet_config'"):
        import_sssd_ecg(checkpoint, tmp_path / "wrong", config=tmp_path / "list.json")
    assert not (tmp_path / "wrong").exists()


def test_cli_import_then_generate(small_checkpoint, tmp_path, capsys):
    _, checkpoint = small_checkpoint
    out, generated = tmp_path / "model", tmp_path / "generated"
    assert main(["import-sssd-ecg", str(checkpoint), str(out)]) == 0
    assert "imported" in capsys.readouterr().out
    assert (
        main(
            [
                "generate",
                "--model",
                str(out),
                "-n",
                "2",
                "--labels",
                "NORM",
                "--sampler",
                "ddim",
                "--steps",
                "5",
                "--out",
                str(generated),
                "--format",
                "npz",
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    with np.load(generated / "ecgs.npz", allow_pickle=False) as npz:
        assert npz["signals"].shape == (2, 12, 32) and np.isfinite(npz["signals"]).all()
    assert main(["import-sssd-ecg", str(checkpoint), str(out)]) == 2  # an existing model is not replaced
    assert "already holds" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------------------


BLOCK0 = "residual_layer.residual_blocks.0."
KERNEL0 = BLOCK0 + "S41.s4_layer.kernel.kernel."


def _set(key, value):
    def change(state):
        state[key] = value(state[key]) if callable(value) else value

    return change


def _edit(key, index, delta=1e-3):
    def change(state):
        state[key] = state[key].clone()
        state[key][index] += delta

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("embedding.weight", "oops"), r"model_state_dict\['embedding.weight'\] is a str, not a tensor"),
        (_set(BLOCK0 + "fc_t.bias", [0.0, 1.0]), r"'residual_layer.residual_blocks.0.fc_t.bias'\] is a list"),
        (_set(BLOCK0 + "fc_t.bias", torch.zeros(5)), r"fc_t.bias'\] has shape \(5,\), expected \(4,\)"),
        (_set("extra.weight", torch.zeros(3)), r"unexpected entry 'extra.weight'"),
        (
            lambda s: s.pop(BLOCK0 + "S42.norm_layer.bias"),
            r"lacks 'residual_layer.residual_blocks.0.S42.norm_layer.bias'",
        ),
        (_set(BLOCK0 + "fc_t.bias", lambda v: v.double().fill_(float("nan"))), r"fc_t.bias'\] holds NaN"),
        (_set(BLOCK0 + "fc_t.bias", lambda v: v.long()), r"fc_t.bias'\] is a torch.int64"),
        (_edit(KERNEL0 + "B", (0, 3, 1, 0)), r"kernel.kernel.B'\].*feature 3 differs from feature 0"),
        (_edit(KERNEL0 + "P", (0, 5, 0, 1)), r"kernel.kernel.P'\].*feature 5 differs"),
        (_edit(KERNEL0 + "w", (7, 2, 0)), r"kernel.kernel.w'\].*feature 7 differs"),
        (_edit(KERNEL0 + "Q", (0, 0, 0, 1)), r"kernel.kernel.Q'\] is not the complex conjugate"),
        (
            _set(BLOCK0 + "S42.s4_layer.kernel.kernel.omega", lambda v: fft_nodes(33)[0]),
            r"S42.s4_layer.kernel.kernel.omega'\] does not hold the FFT nodes",
        ),
    ],
)
def test_refuses_bad_tensors_naming_the_key(change, message, tmp_path):
    state = small_state()
    change(state)
    path = tmp_path / "bad.pkl"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(DataError, match=message):
        import_sssd_ecg(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_configurations_midtecg_cannot_hold(tmp_path):
    for changes, key in (
        ({"skip_channels": 6}, "skip_channels"),
        ({"label_embed_classes": 5}, "label_embed_classes"),
        ({"diffusion_step_embed_dim_mid": 20}, "diffusion_step_embed_dim_mid"),
    ):
        state = small_state(**changes)
        with pytest.raises(DataError, match=f"wavenet_config {key} = .* cannot be imported"):
            convert_state_dict(state, infer_reference_config(state))
    path = tmp_path / "corrupt.pkl"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="could not be read as a PyTorch checkpoint"):
        load_reference_checkpoint(path)
    assert main(["import-sssd-ecg", str(path), str(tmp_path / "out")]) == 2
