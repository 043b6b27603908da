"""The 1-D XResNet classifier: shapes, structure, initialisation, gradients, determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from midtecg.models.xresnet1d import (
    Bottleneck1d,
    XResNet1d,
    XResNet1dConfig,
    count_parameters,
    xresnet1d101,
    xresnet1d_small,
)

torch.set_num_threads(1)

# Measured once, kept as a regression value: 12 leads, 71 classes, kernel 5, layers 3-4-23-3, simple head.
XRESNET1D101_PARAMS_71 = 33_320_903


def _small(n_classes=5, **kw):
    return XResNet1d(xresnet1d_small(n_classes=n_classes, **kw))


@pytest.mark.parametrize("length", [250, 251, 1000, 64])
def test_output_and_embedding_shapes(length):
    torch.manual_seed(0)
    model = _small().eval()
    x = torch.randn(3, 12, length)
    assert model(x).shape == (3, 5)
    cfg = model.config
    assert model.embed(x).shape == (3, cfg.embedding_dim) == (3, 2 * cfg.widths[-1] * cfg.expansion)
    assert model.embed(x, pool="avg").shape == (3, cfg.widths[-1] * cfg.expansion)
    assert model.embed(x, pool="max").shape == (3, cfg.widths[-1] * cfg.expansion)
    # total downsampling 32: stem conv stride 2, max-pool 2, stages 2-4 stride 2
    feat = model.features(x)
    expected = length
    for _ in range(5):
        expected = (expected + 1) // 2
    assert feat.shape == (3, cfg.widths[-1] * cfg.expansion, expected)


def test_head_is_concat_pool_bn_dropout_linear():
    torch.manual_seed(0)
    model = _small().eval()
    x = torch.randn(2, 12, 250)
    h = model.features(x)
    z = torch.cat([h.mean(-1), h.amax(-1)], dim=1)
    torch.testing.assert_close(model.embed(x), z)
    torch.testing.assert_close(model(x), model.head_linear(model.head_norm(z)))


def test_bad_input_is_rejected():
    model = _small()
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(2, 8, 250))
    with pytest.raises(ValueError):
        XResNet1dConfig(n_classes=3, layers=(1, 1), widths=(8, 8, 8))
    with pytest.raises(ValueError):
        XResNet1dConfig(n_classes=3, kernel_size=4)


def test_xresnet1d101_structure_and_parameter_count():
    cfg = xresnet1d101(n_classes=71)
    assert cfg.layers == (3, 4, 23, 3) and cfg.kernel_size == 5 and cfg.expansion == 4
    assert cfg.stem_widths == (32, 32, 64) and cfg.widths == (64, 128, 256, 512)
    model = XResNet1d(cfg)
    n_params = count_parameters(model)
    print(f"xresnet1d101 (12 leads, 71 classes) trainable parameters: {n_params:,}")
    assert n_params == XRESNET1D101_PARAMS_71

    # stem: three conv-BN-ReLU (32, 32, 64), stride 2 on the first only, kernel 5, then max-pool
    convs = [m for m in model.stem.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [32, 32, 64]
    assert [c.stride[0] for c in convs] == [2, 1, 1]
    assert all(c.kernel_size[0] == 5 for c in convs)
    assert isinstance(model.stem[-1], nn.MaxPool1d)

    assert [len(stage) for stage in model.stages] == [3, 4, 23, 3]
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            assert isinstance(block, Bottleneck1d)
            mid = block.path[1][0]
            assert mid.kernel_size[0] == 5
            assert mid.stride[0] == (2 if i > 0 and j == 0 else 1)
            assert block.path[2][0].out_channels == cfg.widths[i] * 4
            if j == 0:  # ResNet-D shortcut: avg-pool when strided, then 1x1 conv + BN (channels change)
                kinds = [type(m) for m in block.shortcut]
                assert kinds == ([nn.AvgPool1d, nn.Sequential] if i > 0 else [nn.Sequential])
                assert block.shortcut[-1][0].kernel_size[0] == 1
            else:
                assert len(block.shortcut) == 0
    assert model.head_linear.in_features == 4096 and model.head_linear.out_features == 71

    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 12, 250)).shape == (1, 71)


def test_last_bn_of_each_block_starts_at_zero_so_blocks_start_as_shortcut():
    torch.manual_seed(0)
    model = _small()
    blocks = [b for b in model.modules() if isinstance(b, Bottleneck1d)]
    assert blocks
    for b in blocks:
        assert torch.all(b.path[2][1].weight == 0)
        assert torch.all(b.path[0][1].weight == 1)
    model.eval()
    x = torch.randn(2, 32, 40)
    block = model.stages[0][0]
    torch.testing.assert_close(block(x), torch.relu(block.shortcut(x)))


def test_gradients_flow():
    torch.manual_seed(0)
    model = _small(n_classes=3)
    x = torch.randn(4, 12, 250)
    y = torch.randint(0, 2, (4, 3)).float()
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["stem.0.0.weight"].abs().sum() > 0
    assert grads["head_linear.weight"].abs().sum() > 0
    # the zero-initialised gammas get a gradient, so the residual paths can switch on
    assert grads["stages.0.0.path.2.1.weight"].abs().sum() > 0
    # one optimiser step changes the output
    before = model.eval()(x).detach().clone()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.allclose(model(x), before)


def test_determinism_with_seed():
    torch.manual_seed(123)
    a = _small()
    torch.manual_seed(123)
    b = _small()
    torch.manual_seed(7)
    c = _small()
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    x = torch.randn(2, 12, 250)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


def test_config_round_trip():
    cfg = xresnet1d_small(n_classes=4, in_leads=8)
    d = cfg.to_dict()
    assert XResNet1dConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown"):
        XResNet1dConfig.from_dict({**d, "bogus": 1})
    assert XResNet1d(cfg)(torch.randn(2, 8, 100)).shape == (2, 4)
