"""SSSD-ECG denoiser: published parameter count, init, gradients, conditions, config round trip."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from midtecg.data.condition_groups import ConditionGroup
from midtecg.models.config import SSSDConfig
from midtecg.models.s4 import S4Layer
from midtecg.models.sssd import SSSDECG, step_embedding

SMALL = dict(channels=16, blocks=2, length=64, state_size=8, step_embed_dim=16, step_hidden=32)


def small_config(**overrides) -> SSSDConfig:
    return SSSDConfig(**{**SMALL, **overrides})


def inputs(cfg: SSSDConfig, batch: int = 3, length: int | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    length = cfg.length if length is None else length
    x = torch.randn(batch, cfg.in_leads, length, generator=g)
    t = torch.randint(0, 200, (batch,), generator=g)
    cond = {grp.name: (torch.rand(batch, grp.size, generator=g) < 0.3).float() for grp in cfg.condition_groups}
    return x, t, cond


def perturb_output(model: SSSDECG, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.out_conv.weight.copy_(0.1 * torch.randn(model.out_conv.weight.shape, generator=g))
        model.out_conv.bias.copy_(0.1 * torch.randn(model.out_conv.bias.shape, generator=g))


def n_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_published_parameter_count():
    with torch.device("meta"):
        model = SSSDECG(SSSDConfig())
    assert n_trainable(model) == 50_202_504
    block = model.blocks[0]
    assert n_trainable(block) == 1_383_168
    assert n_trainable(block.conv) == 394_240
    assert n_trainable(block.s4_1) == 328_704 + 1_024
    assert n_trainable(model) - 36 * n_trainable(block) == 408_456
    assert n_trainable(model.cond_embed) == 71 * 128
    assert n_trainable(model.out_conv) == 2_056
    # A, B and the step sizes are buffers
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_buffers()}
    assert names == {"log_dt", "lam", "B", "P"}


def test_paper_demographic_configs_keep_cond_dim_128():
    for extra in (ConditionGroup("age", 6, 32), ConditionGroup("sex", 2, 32)):
        cfg = SSSDConfig(condition_groups=(ConditionGroup("labels", 71, 96), extra))
        assert cfg.cond_dim == 128
        with torch.device("meta"):
            model = SSSDECG(cfg)
        assert n_trainable(model) == 50_202_504 - 71 * 128 + 71 * 96 + extra.size * 32


def test_step_embedding_formula():
    t = torch.tensor([0, 7, 199])
    emb = step_embedding(t, 128)
    freqs = torch.exp(-math.log(10000) * torch.arange(64) / 63)
    assert emb.shape == (3, 128)
    assert torch.allclose(emb[:, :64], torch.sin(t[:, None] * freqs), atol=1e-4)
    assert torch.allclose(emb[:, 64:], torch.cos(t[:, None] * freqs), atol=1e-4)


@pytest.mark.parametrize("variant", ["s4", "s4d"])
def test_small_model_shapes_zero_init_gradients(variant):
    cfg = small_config(s4_variant=variant)
    torch.manual_seed(0)
    model = SSSDECG(cfg)
    x, t, cond = inputs(cfg)
    out = model(x, t, cond)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.count_nonzero(out) == 0  # zero-initialised output conv
    perturb_output(model)
    model(x, t, cond).square().mean().backward()
    # The last block's residual output is never used (only its skip is), as in the reference: its
    # residual conv is counted in the published total but gets no gradient.
    dead = f"blocks.{cfg.blocks - 1}.res_conv."
    for name, p in model.named_parameters():
        if name.startswith(dead):
            assert p.grad is None or p.grad.abs().sum() == 0, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    # shorter sequences run; longer ones are refused
    assert model(x[..., :40], t, cond).shape == (3, 8, 40)
    with pytest.raises(ValueError, match="at most 64"):
        model(torch.randn(3, 8, 65), t, cond)


def test_same_seed_same_output():
    cfg = small_config()
    outs = []
    for _ in range(2):
        torch.manual_seed(11)
        model = SSSDECG(cfg)
        perturb_output(model)
        outs.append(model(*inputs(cfg)))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(12)
    other = SSSDECG(cfg)
    perturb_output(other)
    assert not torch.equal(other(*inputs(cfg)), outs[0])


def test_output_depends_on_step_and_conditions():
    cfg = small_config()
    torch.manual_seed(1)
    model = SSSDECG(cfg)
    perturb_output(model)
    x, t, cond = inputs(cfg)
    base = model(x, t, cond)
    assert not torch.allclose(base, model(x, t + 1, cond))
    assert not torch.allclose(base, model(x, t, {"labels": 1 - cond["labels"]}))
    # each sample only sees its own conditions
    assert torch.allclose(model(x[:1], t[:1], {"labels": cond["labels"][:1]}), base[:1], atol=1e-5)
    # scalar and (B, 1) steps
    assert torch.allclose(model(x, t[:, None], cond), base)
    assert torch.allclose(model(x, torch.tensor(5), cond), model(x, torch.full((3,), 5), cond))


def test_condition_groups_and_null_embeddings():
    groups = (ConditionGroup("labels", 71, 12), ConditionGroup("age", 6, 4))
    cfg = small_config(condition_groups=groups, null_conditions=True)
    torch.manual_seed(2)
    model = SSSDECG(cfg)
    perturb_output(model)
    assert model.config.cond_dim == 16
    assert n_trainable(model.null_embed) == 16
    x, t, cond = inputs(cfg)
    keep = {"labels": torch.zeros(3, dtype=torch.bool), "age": torch.zeros(3, dtype=torch.bool)}
    base = model(x, t, cond)
    assert torch.equal(model(x, t, cond, keep), base)
    # dropping every group: output no longer depends on the conditions
    drop_all = {k: torch.ones(3, dtype=torch.bool) for k in keep}
    other = {k: 1 - v for k, v in cond.items()}
    assert torch.allclose(model(x, t, cond, drop_all), model(x, t, other, drop_all))
    # dropping one sample's age only affects that sample
    partial = {"age": torch.tensor([False, True, False])}
    out = model(x, t, cond, partial)
    assert torch.allclose(out[[0, 2]], base[[0, 2]], atol=1e-5)
    with torch.no_grad():
        model.null_embed["age"].fill_(3.0)
    assert not torch.allclose(model(x, t, cond, partial)[1], base[1])
    # the null embeddings are trained
    model.zero_grad()
    model(x, t, cond, partial).square().mean().backward()
    assert model.null_embed["age"].grad.abs().sum() > 0
    assert model.null_embed["labels"].grad is None  # labels were not dropped


def test_condition_errors():
    cfg = small_config()
    model = SSSDECG(cfg)
    x, t, cond = inputs(cfg)
    with pytest.raises(ValueError, match="missing \\['labels'\\]"):
        model(x, t, {})
    with pytest.raises(ValueError, match="unknown \\['age'\\]"):
        model(x, t, {**cond, "age": torch.zeros(3, 6)})
    with pytest.raises(ValueError, match=r"shape \(3, 71\)"):
        model(x, t, {"labels": torch.zeros(3, 70)})
    with pytest.raises(ValueError, match=r"shape \(3, 71\)"):
        model(x, t, {"labels": torch.zeros(2, 71)})
    with pytest.raises(ValueError, match="null embeddings"):
        model(x, t, cond, {"labels": torch.zeros(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="x_t must have shape"):
        model(x[:, :7], t, cond)
    with pytest.raises(ValueError, match="t must have shape"):
        model(x, t[:2], cond)
    null_model = SSSDECG(small_config(null_conditions=True))
    with pytest.raises(ValueError, match="unknown condition groups"):
        null_model(x, t, cond, {"sex": torch.zeros(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"drop\['labels'\]"):
        null_model(x, t, cond, {"labels": torch.zeros(2, dtype=torch.bool)})


def test_config_round_trip_and_validation():
    cfg = SSSDConfig(
        condition_groups=(ConditionGroup("labels", 71, 96), ConditionGroup("sex", 2, 32)),
        null_conditions=True,
        s4_variant="s4d",
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert SSSDConfig.from_dict(data) == cfg
    assert SSSDConfig.from_dict(SSSDConfig().to_dict()) == SSSDConfig()
    assert isinstance(SSSDConfig.from_dict(data).condition_groups, tuple)
    with pytest.raises(ValueError, match="unknown key"):
        SSSDConfig.from_dict({**data, "dropout": 0.1})
    with pytest.raises(ValueError, match="s4_variant"):
        SSSDConfig(s4_variant="s5")
    with pytest.raises(ValueError, match="repeated"):
        SSSDConfig(condition_groups=(ConditionGroup("a", 2, 2), ConditionGroup("a", 3, 2)))
    with pytest.raises(ValueError, match="positive"):
        ConditionGroup("a", 0, 2)
    with pytest.raises(ValueError, match="channels"):
        SSSDConfig(channels=0)


def test_cached_kernels_context(monkeypatch):
    cfg = small_config()
    torch.manual_seed(3)
    model = SSSDECG(cfg).eval()
    perturb_output(model)
    x, t, cond = inputs(cfg)
    calls = []
    original = model._weight_tensors
    monkeypatch.setattr(model, "_weight_tensors", lambda length: calls.append(length) or original(length))
    with torch.no_grad():
        plain = model(x, t, cond)
        with model.cached_kernels():
            with model.cached_kernels():  # nesting is harmless
                cached = [model(x, t, cond) for _ in range(2)]
            model(x[..., :40], t, cond)  # another length gets its own entry
            assert sorted(model._frozen) == [40, cfg.length]
    assert calls == [cfg.length, cfg.length, 40] and model._frozen is None
    assert len(model.s4_layers()) == 2 * cfg.blocks
    assert torch.allclose(cached[0], plain, atol=1e-5) and torch.equal(cached[0], cached[1])


def s4_reference(layer: S4Layer, u: torch.Tensor) -> torch.Tensor:
    """The S4 layer as written before its kernels were batched: D u outside the FFT, Linear_out on (B, L, H)."""
    y = F.gelu(layer.ssm_conv(u) + layer.D[:, None] * u)
    return layer.norm(u.transpose(1, 2) + layer.out(y.transpose(1, 2))).transpose(1, 2)


def reference_forward(model: SSSDECG, x, t, cond, drop=None) -> torch.Tensor:
    """The denoiser block by block from its modules (per-layer kernels, projections and weight norms, residual
    and skip convs as one conv): the computation the batched forward replaced."""
    cfg, c = model.config, model.config.channels
    embedded = model.embed_conditions(cond, drop, x.shape[0], x.device)
    step = model.step_mlp(step_embedding(t, cfg.step_embed_dim).to(x.dtype))
    h, skip = F.relu(model.input_conv(x)), 0
    for block in model.blocks:
        z = block.conv(h + block.step_proj(step)[:, :, None])
        z = s4_reference(block.s4_1, z)
        z = s4_reference(block.s4_2, z + block.cond_proj(embedded)[:, :, None])
        out = torch.tanh(z[:, :c]) * torch.sigmoid(z[:, c:])
        both = F.conv1d(
            out,
            torch.cat([block.res_conv.weight, block.skip_conv.weight]),
            torch.cat([block.res_conv.bias, block.skip_conv.bias]),
        )
        h, skip = (h + both[:, :c]) * math.sqrt(0.5), skip + both[:, c:]
    return model.out_conv(F.relu(model.skip_out(skip * math.sqrt(1 / len(model.blocks)))))


@pytest.mark.parametrize("variant", ["s4", "s4d"])
def test_batched_forward_matches_the_block_by_block_computation(variant):
    """Kernels, projections and weight norms of all blocks in one call each: the same numbers (float64 to
    1e-12, float32 to round-off) and the same gradients."""
    cfg = small_config(blocks=3, length=50, s4_variant=variant, null_conditions=True)
    x, t, cond = inputs(cfg, length=50)
    drop = {"labels": torch.tensor([True, False, False])}
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        torch.manual_seed(6)
        model = SSSDECG(cfg).to(dtype)
        perturb_output(model)
        x_d, cond_d = x.to(dtype), {k: v.to(dtype) for k, v in cond.items()}
        grads = []
        for forward in (model, lambda *a, model=model: reference_forward(model, *a)):
            model.zero_grad()
            out = forward(x_d, t, cond_d, drop)
            out.square().sum().backward()
            grads.append((out.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
        (fast, fast_grads), (ref, ref_grads) = grads
        assert (fast - ref).abs().max() <= tol * ref.abs().max(), (dtype, (fast - ref).abs().max())
        for name, grad in ref_grads.items():
            if name.startswith(f"blocks.{cfg.blocks - 1}.res_conv."):
                assert grad.abs().max() == 0 and name not in fast_grads  # the last residual is not computed
                continue
            assert (fast_grads[name] - grad).abs().max() <= 10 * tol * grad.abs().max().clamp_min(1e-30), name


# Outputs of the built-in model and of the test fixture model for fixed inputs: sum of squares, sum,
# out[1, :, 500] and out[2, 3, ::200]. The fixture's are from commit c3da3ec (before the forward was batched),
# so they check the batched forward against the old one; the built-in model's were taken when its weights
# were replaced (issue 12, step 18,534), so they pin the shipped weights and today's forward.
SAVED_OUTPUTS = {
    "default": (
        46765.39549639402,
        4153.947776564397,
        [0.230563, -1.941333, -1.118104, 1.618592, 1.215531, -0.222741, -1.507279, -1.499661],
        [0.264374, 2.484958, 1.456429, 1.071701, 1.025663],
    ),
    "fixture": (
        60077.78233507217,
        -4083.939393690671,
        [1.50831, -4.373302, -2.377611, 2.991282, 2.047422, 0.894324, -1.359606, -0.668223],
        [-1.242556, 0.331649, -1.156929, -1.515588, -1.379334],
    ),
}


@pytest.mark.parametrize("name", sorted(SAVED_OUTPUTS))
def test_shipped_models_give_the_saved_outputs(name):
    from midtecg.generate import DEFAULT_MODEL
    from midtecg.sample import load_generator

    path = DEFAULT_MODEL if name == "default" else Path(__file__).parent / "fixtures" / "conditioning_model"
    model = load_generator(path, device="cpu").model
    cfg = model.config
    g = torch.Generator().manual_seed(123)
    x = torch.randn(3, cfg.in_leads, cfg.length, generator=g)
    t = torch.tensor([0, 57, 199])
    cond = {grp.name: torch.randn(3, grp.size, generator=g) for grp in cfg.condition_groups}
    drop = {grp.name: torch.tensor([False, True, False]) for grp in cfg.condition_groups}
    square_sum, total, column, row = SAVED_OUTPUTS[name]
    with torch.no_grad():
        outs = [model(x, t, cond, drop)]
        with model.cached_kernels():
            outs.append(model(x, t, cond, drop))
    for out in outs:
        out = out.double()
        assert out.square().sum().item() == pytest.approx(square_sum, rel=1e-5)
        assert out.sum().item() == pytest.approx(total, abs=1e-3 * abs(total))
        assert torch.allclose(out[1, :, 500], torch.tensor(column, dtype=torch.float64), atol=2e-5)
        assert torch.allclose(out[2, 3, ::200], torch.tensor(row, dtype=torch.float64), atol=2e-5)


def test_state_dict_layout_is_the_shipped_one():
    """Checkpoints, the built-in model and converted reference weights depend on the exact keys and shapes."""
    from safetensors.torch import load_file

    from midtecg.generate import DEFAULT_MODEL

    saved = load_file(DEFAULT_MODEL / "model.safetensors")
    config = json.loads((DEFAULT_MODEL / "config.json").read_text())["model"]
    state = SSSDECG(SSSDConfig.from_dict(config)).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in saved.items()}


def test_activation_checkpointing_gives_the_same_gradients():
    cfg = small_config(blocks=2)
    torch.manual_seed(7)
    model = SSSDECG(cfg)
    perturb_output(model)
    x, t, cond = inputs(cfg)
    results = []
    for enabled in (False, True):
        model.set_activation_checkpointing(enabled)
        model.zero_grad()
        out = model(x, t, cond)
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(results[0][1], results[1][1]))


def test_bf16_autocast_forward_backward():
    cfg = small_config()
    torch.manual_seed(4)
    model = SSSDECG(cfg)
    perturb_output(model)
    x, t, cond = inputs(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, t, cond)
    out.float().square().mean().backward()
    assert torch.isfinite(out).all()
    ref = model(x, t, cond)
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max() + 1e-3


def test_float64_model():
    cfg = small_config(blocks=1)
    torch.manual_seed(5)
    model = SSSDECG(cfg).double()
    perturb_output(model)
    x, t, cond = inputs(cfg)
    out = model(x.double(), t, cond)
    assert out.dtype == torch.float64


def test_every_layer_is_s4():
    model = SSSDECG(small_config(s4_variant="s4d-lin"))
    assert {layer.variant for layer in model.s4_layers()} == {"s4d-lin"}
    assert all(isinstance(b.s4_1, S4Layer) for b in model.blocks)


@pytest.mark.parametrize("variant", ["s4", "s4d"])
def test_no_graph_breaks_under_dynamo(variant):
    cfg = small_config(blocks=1, length=32, s4_variant=variant, null_conditions=True)
    model = SSSDECG(cfg)
    x, t, cond = inputs(cfg, batch=2)
    drop = {"labels": torch.tensor([True, False])}
    model(x, t, cond, drop)  # builds the kernel constants (eagerly, outside any graph)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x, t, cond, drop)
    torch._dynamo.reset()
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    assert explained.graph_count == 1


def test_condition_embeddings_start_like_the_reference_nn_embedding():
    """The reference SSSD-ECG's label table is an nn.Embedding: N(0, 1) entries. nn.Linear's default (std
    1 / sqrt(3 * 71) = 0.068) is kept only as cond_init="linear"."""
    groups = (ConditionGroup("labels", 71, 96), ConditionGroup("age", 6, 32))
    torch.manual_seed(0)
    model = SSSDECG(SSSDConfig(channels=8, blocks=1, length=64, condition_groups=groups))
    for group in groups:
        weight = model.cond_embed[group.name].weight.detach()
        n = weight.numel()
        assert abs(weight.std().item() - 1.0) < 4 / math.sqrt(2 * n), group  # 4 standard errors of a std
        assert abs(weight.mean().item()) < 4 / math.sqrt(n), group
    old = SSSDECG(SSSDConfig(channels=8, blocks=1, length=64, condition_groups=groups, cond_init="linear"))
    assert old.cond_embed["labels"].weight.std().item() == pytest.approx(1 / math.sqrt(3 * 71), rel=0.05)
    with pytest.raises(ValueError, match="cond_init"):
        SSSDConfig(cond_init="xavier")
