"""S4 kernels of many layers in one call (models/s4_kernels.py): batched kernels equal each layer's own, the
basis kept or rebuilt in chunks, the FFT convolution's written-out backward, the constants' cache."""

import pytest
import torch

from midtecg.models import s4_kernels
from midtecg.models.config import S4_VARIANTS
from midtecg.models.s4 import S4Layer
from midtecg.models.s4_kernels import bidirectional_fft_conv, combined_fft, layer_kernels, layer_spectra


def test_chunked_basis_matches_kept_basis(monkeypatch):
    """Without room to keep the NPLR basis, it is rebuilt a chunk at a time (and again in backward): same
    kernels, same gradients."""
    torch.manual_seed(10)
    layer = S4Layer(150, 24, state_size=4, variant="s4")
    results = []
    for budget in (2**30, 0):
        monkeypatch.setattr(s4_kernels, "basis_budget", lambda device, budget=budget: budget)
        monkeypatch.setattr(s4_kernels, "_CHUNK_BYTES", 16 * 8 * 2 * 14 * 40)  # 40 features per chunk
        layer._constants.clear()
        layer.zero_grad()
        k = layer.kernel()
        (k * torch.linspace(-1, 1, 24)).sum().backward()
        results.append((k.detach(), layer.C.grad.clone(), "value" in layer._constants))
    (k_kept, g_kept, kept), (k_chunked, g_chunked, chunked_kept) = results
    assert kept and not chunked_kept
    assert torch.allclose(k_kept, k_chunked, atol=1e-6) and torch.allclose(g_kept, g_chunked, atol=1e-5)


@pytest.mark.parametrize("variant", S4_VARIANTS)
def test_kernels_of_many_layers_in_one_call(variant):
    """layer_kernels / layer_spectra on stacked layers give each layer's own kernel and transfer function,
    and gradients reach each layer's C and D."""
    torch.manual_seed(11)
    layers = [S4Layer(6, 30, state_size=8, variant=variant) for _ in range(3)]
    cache = {}
    k = layer_kernels(layers, 20, cache)
    assert k.shape == (18, 2, 20)
    spectra = layer_spectra(layers, 20, cache)
    for i, layer in enumerate(layers):
        assert torch.allclose(k[6 * i : 6 * (i + 1)].transpose(0, 1), layer.kernel(20), atol=1e-6)
        own = combined_fft(layer.kernel(20).transpose(0, 1), 20) + layer.D[:, None]
        assert torch.allclose(spectra[i], own, atol=1e-5)
    spectra.abs().sum().backward()
    assert all(layer.C.grad.abs().sum() > 0 and layer.D.grad.abs().sum() > 0 for layer in layers)


def test_fft_conv_backward_matches_autograd():
    torch.manual_seed(12)
    for length in (7, 8):
        u = torch.randn(2, 3, length, dtype=torch.float64, requires_grad=True)
        k = torch.randn(3, length + 1, dtype=torch.complex128, requires_grad=True)
        assert torch.autograd.gradcheck(lambda u, k, length=length: bidirectional_fft_conv(u, k, length), (u, k))
        plain = torch.fft.irfft(torch.fft.rfft(u, n=2 * length) * k, n=2 * length)[..., :length]
        g = torch.randn(2, 3, length, dtype=torch.float64)
        ours = torch.autograd.grad(bidirectional_fft_conv(u, k, length), (u, k), g)
        for a, b in zip(ours, torch.autograd.grad(plain, (u, k), g)):
            assert torch.allclose(a, b, atol=1e-12)


def test_kernel_constants_follow_the_buffers():
    """The cached buffer-only part is rebuilt when a buffer changes in place, on load_state_dict and on a
    dtype change."""
    torch.manual_seed(13)
    layer = S4Layer(4, 16, state_size=8, variant="s4d")
    other = S4Layer(4, 16, state_size=8, variant="s4d")
    before = layer.kernel()
    with torch.no_grad():
        layer.log_dt.add_(0.5)
    moved = layer.kernel()
    assert not torch.allclose(before, moved)
    layer.load_state_dict(other.state_dict())
    assert torch.allclose(layer.kernel(), other.kernel())
    assert layer.double().kernel().dtype == torch.float64


def test_kernel_fft_backward_matches_autograd():
    torch.manual_seed(14)
    k = torch.randn(3, 2, 9, dtype=torch.float64, requires_grad=True)
    for channels in (2, 1):
        kc = k[:, :channels]
        assert torch.autograd.gradcheck(lambda x: combined_fft(x, 9), (kc,))
        g = torch.randn(3, 10, dtype=torch.complex128)
        full = torch.cat([kc[:, 0], kc[:, 1].flip(-1)], -1) if channels == 2 else kc[:, 0]
        plain = torch.fft.rfft(full, n=18)
        assert torch.allclose(
            torch.autograd.grad(combined_fft(kc, 9), k, g)[0], torch.autograd.grad(plain, k, g)[0], atol=1e-12
        )
