"""S4 / S4D layers: FFT convolution against the step-by-step recurrence, init, shapes, gradients, caching."""

import math

import numpy as np
import pytest
import torch

from midtecg.models.config import S4_VARIANTS
from midtecg.models.s4 import S4Layer, hippo_legs, nplr_legs

VARIANTS = list(S4_VARIANTS)


def recurrence(layer: S4Layer, u: torch.Tensor) -> torch.Tensor:
    """Run the discretised SSMs step by step (float64): forward from the start, backward from the end
    (its output at n is read from the state after it consumed u[n + 1])."""
    a, b, c = layer.discrete_ssm()
    batch, h, length = u.shape
    uc = u.to(torch.complex128)
    x = torch.zeros(batch, h, a.shape[-1], dtype=torch.complex128)
    y = torch.zeros(batch, h, length, dtype=torch.float64)
    for n in range(length):
        x = torch.einsum("hij,bhj->bhi", a, x) + b * uc[:, :, n, None]
        y[:, :, n] += torch.einsum("hi,bhi->bh", c[0], x).real
    if c.shape[0] == 2:
        x = torch.zeros_like(x)
        for n in range(length - 1, -1, -1):
            y[:, :, n] += torch.einsum("hi,bhi->bh", c[1], x).real
            x = torch.einsum("hij,bhj->bhi", a, x) + b * uc[:, :, n, None]
    return y


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("max_length,length", [(32, 32), (31, 31), (32, 20)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_fft_conv_matches_recurrence(variant, max_length, length, bidirectional):
    torch.manual_seed(1)
    layer = S4Layer(
        4, max_length, state_size=8, variant=variant, bidirectional=bidirectional, dt_min=0.01, dt_max=0.5
    ).double()
    u = torch.randn(2, 4, length, dtype=torch.float64)
    expected = recurrence(layer, u)
    got = layer.ssm_conv(u)
    assert got.dtype == torch.float64
    assert torch.allclose(got, expected, atol=1e-10, rtol=1e-10), (got - expected).abs().max()


@pytest.mark.parametrize("variant", ["s4", "s4d"])
def test_kernel_matches_powers_at_full_state_size(variant):
    """N = 64 (the published state size), L = 200: kernel taps equal C A_bar^l B_bar."""
    torch.manual_seed(2)
    layer = S4Layer(3, 200, state_size=64, variant=variant).double()
    a, b, c = layer.discrete_ssm()
    x, taps = b.clone(), []
    for _ in range(200):
        taps.append(torch.einsum("chn,hn->ch", c, x).real)
        x = torch.einsum("hij,hj->hi", a, x)
    expected = torch.stack(taps, -1)
    got = layer.kernel()
    assert torch.allclose(got, expected, atol=1e-10, rtol=1e-8), (got - expected).abs().max()
    # float32 kernel close to the float64 one
    k32 = layer.float().kernel().double()
    assert (k32 - got).abs().max() < 1e-4 * got.abs().max()


def test_nplr_reconstructs_hippo_legs():
    a, b = hippo_legs(16)
    nplr = nplr_legs(16)
    v = np.concatenate([nplr["V"], nplr["V"].conj()], 1)
    lam = np.concatenate([nplr["lam"], nplr["lam"].conj()])
    p = np.concatenate([nplr["P"], nplr["P"].conj()])
    bt = np.concatenate([nplr["B"], nplr["B"].conj()])
    np.testing.assert_allclose(v.conj().T @ v, np.eye(16), atol=1e-12)
    np.testing.assert_allclose(v @ (np.diag(lam) - np.outer(p, p.conj())) @ v.conj().T, a, atol=1e-10)
    np.testing.assert_allclose(v @ bt, b, atol=1e-10)
    np.testing.assert_allclose(nplr["lam"].real, -0.5)


def test_s4_buffers_and_parameter_count():
    with torch.device("meta"):
        layer = S4Layer(512, 1000, state_size=64, variant="s4")
    params = dict(layer.named_parameters())
    assert sorted(params) == ["C", "D", "norm.bias", "norm.weight", "out.bias", "out.weight"]
    assert params["C"].shape == (2, 512, 32, 2)
    assert sum(p.numel() for n, p in params.items() if not n.startswith("norm")) == 328_704
    assert sum(p.numel() for p in layer.parameters()) == 328_704 + 1_024
    buffers = dict(layer.named_buffers())
    assert set(buffers) == {"log_dt", "lam", "B", "P"}
    assert all(not b.is_complex() for b in buffers.values())


def test_step_sizes_log_uniform():
    torch.manual_seed(3)
    layer = S4Layer(2000, 16, state_size=4, variant="s4d")
    dt = layer.log_dt.exp()
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    assert abs(layer.log_dt.mean().item() - 0.5 * (math.log(1e-3) + math.log(1e-1))) < 0.1


def test_length_corrected_c_comes_from_complex_normal_c():
    """C~ = C (I - A_bar^L): the C recovered from the stored C~ is the complex-normal draw."""
    torch.manual_seed(4)
    layer = S4Layer(6, 50, state_size=16, variant="s4", dt_min=1e-3, dt_max=1e-2)
    torch.manual_seed(4)
    torch.rand(6)  # log_dt
    drawn = torch.randn(2, 6, 8, dtype=torch.complex64).to(torch.complex128)
    _, _, c_full = layer.discrete_ssm()
    assert torch.allclose(c_full[..., :8], drawn, atol=1e-4)
    assert torch.allclose(c_full[..., 8:], drawn.conj(), atol=1e-4)
    # with these small steps A_bar^L is far from 0, so the correction is not the identity
    stored = torch.view_as_complex(layer.C.detach()).to(torch.complex128)
    assert (stored - drawn).abs().max() > 0.05


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_shapes_gradients_and_determinism(variant):
    torch.manual_seed(5)
    layer = S4Layer(8, 40, state_size=8, variant=variant)
    u = torch.randn(3, 8, 40, requires_grad=True)
    y = layer(u)
    assert y.shape == u.shape and y.dtype == torch.float32
    # LayerNorm over the features
    assert torch.allclose(y.mean(1), torch.zeros(3, 40), atol=1e-5)
    y.square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert u.grad.abs().sum() > 0
    assert all(b.grad is None for b in layer.buffers())
    torch.manual_seed(5)
    again = S4Layer(8, 40, state_size=8, variant=variant)
    assert torch.equal(again(u.detach()), y.detach())
    # shorter inputs use the first taps
    assert layer(torch.randn(2, 8, 17)).shape == (2, 8, 17)
    with pytest.raises(ValueError, match="up to 40"):
        layer(torch.randn(2, 8, 41))
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(2, 7, 40))


def test_forward_formula():
    torch.manual_seed(6)
    layer = S4Layer(6, 24, state_size=8, variant="s4").double()
    u = torch.randn(2, 6, 24, dtype=torch.float64)
    inner = torch.nn.functional.gelu(layer.ssm_conv(u) + layer.D[:, None] * u)
    expected = layer.norm(layer.out(inner.transpose(1, 2)) + u.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(layer(u), expected, atol=1e-12)


def test_cached_kernel_reused_and_released():
    torch.manual_seed(8)
    layer = S4Layer(4, 32, state_size=8)
    u = torch.randn(2, 4, 32)
    plain = layer(u)
    calls = []
    original = layer.kernel
    layer.kernel = lambda *a, **k: calls.append(1) or original(*a, **k)
    with layer.cached_kernel():
        with layer.cached_kernel():  # nesting is harmless
            first = layer(u)
        second = layer(u)
        layer(torch.randn(1, 4, 16))  # another length gets its own entry
    assert len(calls) == 2
    assert torch.allclose(first, plain, atol=1e-6) and torch.equal(first, second)
    assert layer._cache is None
    layer(u)
    assert len(calls) == 3


def test_bf16_autocast_keeps_fft_in_float32():
    torch.manual_seed(9)
    layer = S4Layer(8, 32, state_size=8)
    u = torch.randn(2, 8, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv = layer.ssm_conv(u.bfloat16())
        y = layer(u.bfloat16())
    assert conv.dtype == torch.float32
    assert torch.allclose(conv, layer.ssm_conv(u), atol=0.05)
    assert y.shape == u.shape and torch.isfinite(y).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        S4Layer(4, 8, variant="s5")
    with pytest.raises(ValueError, match="even"):
        S4Layer(4, 8, state_size=7)
