"""S4 / S4D convolution kernels of many layers in one call (the maths of ``midtecg.models.s4``).

A layer's kernel is linear in its trained C; everything else it depends on (A, B and the step sizes) is a
frozen buffer. So the kernels of all the layers of a model are one contraction of their stacked C's with
constants that are computed once:

``"s4"`` (NPLR, bilinear)
    With C~ the stored length-corrected C and the Cauchy sums of ``s4.py``, the generating function at the
    L-th roots of unity is ``K^(z) = sum_n C~_n U_n(z) + conj(C~_n) U'_n(z)``, with
    ``U_n = (2 / beta) (B_n - W P_n) / (g - lam_n)``, ``U'_n`` its conjugate-mode partner and
    ``W = T_PB / (1 + T_PP)`` the Woodbury factor (it involves only P and B). Writing C~ = c_r + i c_i,
    ``K^ = sum_n c_r,n (U_n + U'_n) + c_i,n i (U_n - U'_n)``: a real spectral basis (H, 2 N/2, 2 (L/2 + 1))
    holds the brackets (re and im of each rfft bin), the kernel's spectrum is ``[c_r, c_i][h] @ basis[h]``,
    one batched matmul, and the kernel its inverse rfft. The basis is computed in float64 (real arithmetic,
    a few features at a time) and stored in the layers' dtype. It takes ``2 N/2 L`` numbers per feature
    (256 kB at N = 64, L = 1000 in float32; 9.4 GB for the 72 layers of the published model): it is kept
    when it fits ``basis_budget`` (a quarter of a GPU's memory, an eighth of the RAM) and otherwise rebuilt
    chunk by chunk in every call (and again in backward, under ``torch.utils.checkpoint``). Building it
    costs about 1.5 ms per feature on one CPU core (9 s for 12 x 128 channels, 50 s for the published
    size; a few ms on a GPU).
``"s4d"``, ``"s4d-lin"`` (diagonal, ZOH)
    ``k_l = 2 Re sum_n C_n B_bar_n A_n^l``, blocked as l = i m + j: the constants are ``B_bar A^j``
    (H, n, m) and ``A^{m i}`` (H, n, M) with ``m M >= L``, about 2 sqrt(L) numbers per mode; the kernel is
    an elementwise complex product with C and one batched matmul.

Bidirectional layers have two C's (forward and backward SSM) sharing one set of constants. The transfer
function that the FFT convolution uses is the rfft (n = 2L) of ``cat(k_fwd, flip(k_bwd))`` (lags 0..L-1,
then -L..-1), plus D, which is a lag-0 tap (a constant over frequency).

Everything here runs in real arithmetic except the FFTs (their backward passes are written out: autograd's
generic ones take twice the operators and a full complex FFT); the constants are cached per (device, dtype,
length) and rebuilt when a buffer changes (checked outside ``torch.compile`` only; ``load_state_dict``
clears the cache explicitly).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["basis_budget", "bidirectional_fft_conv", "combined_fft", "layer_kernels", "layer_spectra"]

_F64 = torch.float64
_CHUNK_BYTES = 4 * 2**20  # float64 working set of one chunk of the NPLR basis on the CPU (cache-sized)


def basis_budget(device: torch.device) -> int:
    """Bytes the kept S4 basis may take on ``device``: a quarter of a GPU's memory, an eighth of the RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 4
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8


def _complex(x: torch.Tensor) -> torch.Tensor:
    """(..., 2) real pairs -> complex128."""
    x = x.to(_F64)
    return torch.complex(x[..., 0], x[..., 1])


def _per_feature(layers, name: str) -> torch.Tensor:
    """A per-layer mode buffer (n, 2) of every layer -> (layers * H, n) complex128, one row per feature."""
    stacked = _complex(torch.stack([getattr(layer, name) for layer in layers]))
    return stacked.repeat_interleave(layers[0].features, dim=0)


# --------------------------------------------------------------------------------------------------------
# Constants (buffers only; float64 arithmetic)
# --------------------------------------------------------------------------------------------------------


def _nplr_basis(
    dt: torch.Tensor, lam: torch.Tensor, p: torch.Tensor, b: torch.Tensor, length: int, dtype: torch.dtype
) -> torch.Tensor:
    """(F, 2n, 2 (L//2 + 1)) spectral basis of the NPLR kernel (module docstring) in ``dtype``, computed in
    float64: row 2n (2n + 1) holds the rfft bins (re, im interleaved) that Re (Im) of C~_n contributes.
    dt (F,), lam, p, b (F, n) complex128.

    Real arithmetic: with g = i t, t = (2/dt) tan(theta/2) (finite below Nyquist), 1 / (g - lam_n) =
    (a - i w) q with a = -Re lam, w = t - Im lam, q = 1 / (a^2 + w^2), and w = t + Im lam for the conjugate
    mode; U_n = G_n / (g - lam_n) with G = (2/beta) B - (2/beta) W P, four outer products per mode and
    frequency (one batched matmul). At Nyquist (z = -1, even L) K^ = dt Re(sum_n C~_n B_n)."""
    f, n = lam.shape
    n_freq = (length - 1) // 2 + 1
    theta = torch.arange(n_freq, dtype=_F64, device=dt.device) * (2 * math.pi / length)
    t = ((2 / dt)[:, None] * torch.tan(theta / 2))[:, None, :]  # (F, 1, F')
    a, mu = -lam.real[..., None], lam.imag[..., None]  # (F, n, 1)
    # r = [Re 1/(g - lam), Re 1/(g - conj lam), -Im 1/(g - lam), -Im 1/(g - conj lam)]: (F, 4, n, F')
    r = torch.empty(f, 4, n, n_freq, dtype=_F64, device=dt.device)
    for sign, re, im in ((-1, 0, 2), (1, 1, 3)):
        w = t + sign * mu
        q = torch.addcmul(a * a, w, w).reciprocal_()
        torch.mul(a, q, out=r[:, re])
        torch.mul(w, q, out=r[:, im])
    # Woodbury factor W = T_PB / (1 + T_PP), T_X = sum_n X_n / (g - lam_n) + conj(X_n) / (g - conj lam_n)
    pb, pp = p.conj() * b, p.abs() ** 2
    zero = torch.zeros_like(pp)
    rows = torch.stack(
        [
            torch.cat(parts, -1)
            for parts in (  # Re, Im of T_X against r (see above)
                (pb.real, pb.real, pb.imag, -pb.imag),
                (pb.imag, -pb.imag, -pb.real, -pb.real),
                (pp, pp, zero, zero),
                (zero, zero, -pp, -pp),
            )
        ],
        1,
    )  # (F, 4, 4n)
    sums = torch.bmm(rows, r.view(f, 4 * n, n_freq))  # (F, 4, F'): Re T_PB, Im T_PB, Re T_PP, Im T_PP
    woodbury = torch.complex(sums[:, 0], sums[:, 1]) / (1 + torch.complex(sums[:, 2], sums[:, 3]))
    two_over_beta = (2 / (1 + torch.exp(-1j * theta))).expand_as(woodbury)
    ew = two_over_beta * woodbury
    y = torch.stack([two_over_beta.real, two_over_beta.imag, ew.real, ew.imag], 1)  # (F, 4, F')
    br, bi, pr, pi = b.real, b.imag, p.real, p.imag
    coef = torch.stack(
        [  # Re, Im of G = (2/beta) B - (2/beta) W P and of G' (conjugate B and P)
            torch.stack([br, -bi, -pr, pi], -1),
            torch.stack([bi, br, -pi, -pr], -1),
            torch.stack([br, bi, -pr, -pi], -1),
            torch.stack([-bi, br, pi, -pr], -1),
        ],
        1,
    ).reshape(f, 4 * n, 4)
    g_re, g_im, gc_re, gc_im = torch.bmm(coef, y).view(f, 4, n, n_freq).unbind(1)
    r_re, rc_re, s, sc = r.unbind(1)  # s = -Im 1/(g - lam)
    u_re, uc_re = torch.addcmul(g_re * r_re, g_im, s), torch.addcmul(gc_re * rc_re, gc_im, sc)
    u_im, uc_im = torch.addcmul(g_im * r_re, g_re, s, value=-1), torch.addcmul(gc_im * rc_re, gc_re, sc, value=-1)
    out = torch.zeros(f, n, 2, length // 2 + 1, 2, dtype=dtype, device=dt.device)
    # coefficient of Re C~_n: U + U'; of Im C~_n: i (U - U')
    torch.add(u_re, uc_re, out=out[:, :, 0, :n_freq, 0])
    torch.add(u_im, uc_im, out=out[:, :, 0, :n_freq, 1])
    torch.sub(uc_im, u_im, out=out[:, :, 1, :n_freq, 0])
    torch.sub(u_re, uc_re, out=out[:, :, 1, :n_freq, 1])
    if length % 2 == 0:
        out[:, :, 0, -1, 0] = dt[:, None] * b.real
        out[:, :, 1, -1, 0] = -dt[:, None] * b.imag
    return out.view(f, 2 * n, -1)


def _nplr_basis_chunks(layers, length: int, dtype: torch.dtype):
    """(start, stop, build) per chunk of features; build() returns that chunk's basis in ``dtype``."""
    dt = torch.exp(torch.cat([layer.log_dt for layer in layers]).to(_F64))
    lam, p, b = (_per_feature(layers, name) for name in ("lam", "P", "B"))
    per_feature = 8 * 8 * lam.shape[1] * (length // 2 + 1)  # bytes of the float64 arrays alive at once
    step = max(1, (_CHUNK_BYTES if dt.device.type == "cpu" else 256 * _CHUNK_BYTES) // per_feature)
    for start in range(0, dt.shape[0], step):
        stop = min(start + step, dt.shape[0])
        yield start, stop, lambda a=start, z=stop: _nplr_basis(dt[a:z], lam[a:z], p[a:z], b[a:z], length, dtype)


def _vandermonde_tables(layers, length: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """S4D constants: Re and Im of B_bar A^j (F, 1, m, n) for j < m, and ``powers`` (F, 2n, M) =
    2 [Re; -Im] of A^{m i} for i < M, m M >= L. Powers are taken in float64 with phases reduced mod 2 pi
    (then rounded to ``dtype``, as before the kernels were batched)."""
    m = math.isqrt(length - 1) + 1 if length > 1 else 1
    big = -(-length // m)
    dt = torch.exp(torch.cat([layer.log_dt for layer in layers]).to(_F64))[:, None]  # (F, 1)
    lam, b = _per_feature(layers, "lam"), _per_feature(layers, "B")
    dtlam = dt * lam  # (F, n)

    def powers(step: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.arange(count, device=dt.device, dtype=_F64) * step
        mag = torch.exp(dtlam.real[..., None] * k).to(dtype)
        phase = torch.remainder(dtlam.imag[..., None] * k, 2 * math.pi).to(dtype)
        return mag * torch.cos(phase), mag * torch.sin(phase)  # (F, n, count)

    (sr, si), (lr, li) = powers(1, m), powers(m, big)
    b_bar = (torch.exp(dtlam) - 1) / lam * b
    bbr, bbi = b_bar.real.to(dtype)[..., None], b_bar.imag.to(dtype)[..., None]
    er, ei = (x.transpose(1, 2)[:, None].contiguous() for x in (sr * bbr - si * bbi, sr * bbi + si * bbr))
    return er, ei, 2 * torch.cat([lr, -li], dim=1)


def _constants(layers, length: int, cache: dict):
    """The cached constants of ``layers`` (see the module docstring), or None for an NPLR basis that is not
    kept. ``cache`` is the caller's dict; its entry is rebuilt when a buffer, the device, the dtype or the
    length changes (checked in eager mode only: ``torch.compile`` guards on the cached tensors instead)."""
    if not torch.compiler.is_compiling():
        buffers = [t for layer in layers for t in (layer.log_dt, layer.lam, layer.B, layer.P) if t is not None]
        key = (length, layers[0].C.dtype, tuple((t.device, t.data_ptr(), t._version) for t in buffers))
        if cache.get("key") != key:
            cache.clear()
            cache["key"] = key
    value = cache.get("value")
    if value is None:
        value = _build_constants(layers, length)
        if value is not None:
            cache["value"] = value
    return value


@torch.compiler.disable  # built eagerly on the first call (a graph break then), read as a constant after
@torch.no_grad()
def _build_constants(layers, length: int):
    first = layers[0]
    dtype = torch.float64 if first.C.dtype == torch.float64 else torch.float32
    if first.variant != "s4":
        return _vandermonde_tables(layers, length, dtype)
    if _basis_bytes(layers, length, dtype) <= basis_budget(first.C.device):
        return torch.cat([build() for _, _, build in _nplr_basis_chunks(layers, length, dtype)])
    return None


def _basis_bytes(layers, length: int, dtype: torch.dtype) -> int:
    first = layers[0]
    return len(layers) * first.features * first.state_size * length * torch.finfo(dtype).bits // 8


# --------------------------------------------------------------------------------------------------------
# Kernels and transfer functions (differentiable in C and D)
# --------------------------------------------------------------------------------------------------------


def _stacked_c(layers) -> torch.Tensor:
    """(channels, layers * H, n, 2): every layer's C, stacked in one op (the parameters stay separate)."""
    c = layers[0].C if len(layers) == 1 else torch.stack([layer.C for layer in layers], dim=1)
    return c.reshape(c.shape[0], -1, *c.shape[-2:])


def layer_kernels(layers: Sequence, length: int, cache: dict) -> torch.Tensor:
    """Time-domain kernels of ``layers`` (S4 layers of one variant, width, state size and maximum length) in
    one call: (layers * H, channels, L) in float32 (float64 for float64 layers), channel 0 causal, 1
    anti-causal. ``length`` taps; "s4" layers always compute their full length (C~ is corrected for it).
    Autocast is disabled inside."""
    layers = list(layers)
    first = layers[0]
    taps = first.length if first.variant == "s4" else length
    device_type = first.C.device.type
    no_autocast = (
        torch.autocast(device_type, enabled=False) if device_type in ("cpu", "cuda") else contextlib.nullcontext()
    )
    with no_autocast:
        c = _stacked_c(layers)
        c = c.to(torch.float64 if c.dtype == torch.float64 else torch.float32)
        constants = _constants(layers, taps, cache)
        if first.variant == "s4":
            rows = c.permute(1, 0, 2, 3).reshape(c.shape[1], c.shape[0], -1)  # (F, ch, 2n): [Re C~_n, Im C~_n]
            if constants is not None:
                spectra = torch.bmm(rows, constants)
            else:
                spectra = _chunked_nplr_spectra(layers, rows, taps, c.dtype)
            spectra = torch.view_as_complex(spectra.view(*spectra.shape[:2], -1, 2))
            return torch.fft.irfft(spectra, n=taps)[..., :length]
        return _vandermonde_kernels(c, *constants, length)


def _chunked_nplr_spectra(layers, rows: torch.Tensor, length: int, dtype: torch.dtype) -> torch.Tensor:
    """rows @ basis with the basis built a chunk of features at a time and never kept (recomputed in
    backward when gradients are needed)."""
    grad = torch.is_grad_enabled() and rows.requires_grad
    parts = []
    for start, stop, build in _nplr_basis_chunks(layers, length, dtype):
        product = lambda r, build=build: torch.bmm(r, build())
        chunk = rows[start:stop]
        parts.append(checkpoint(product, chunk, use_reentrant=False) if grad else product(chunk))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def _vandermonde_kernels(
    c: torch.Tensor, er: torch.Tensor, ei: torch.Tensor, powers: torch.Tensor, length: int
) -> torch.Tensor:
    """S4D kernels (F, ch, L) from C (ch, F, n, 2): G = C B_bar A^j (complex product, real arithmetic), then
    k[i m + j] = 2 Re sum_n G_nj A_n^{m i} as one batched matmul."""
    cr, ci = c[..., 0].transpose(0, 1)[:, :, None], c[..., 1].transpose(0, 1)[:, :, None]  # (F, ch, 1, n)
    g = torch.cat([cr * er - ci * ei, cr * ei + ci * er], dim=-1)  # (F, ch, m, 2n)
    f, ch, m = g.shape[0], g.shape[1], g.shape[2]
    table = torch.bmm(g.reshape(f, ch * m, -1), powers)  # (F, ch m, M): entry (j, i) is tap i m + j
    return table.reshape(f, ch, m, -1).transpose(2, 3).reshape(f, ch, -1)[..., :length]


def combined_fft(k: torch.Tensor, length: int) -> torch.Tensor:
    """Kernels (F, ch, >= L) -> rfft (n = 2L) of the combined non-causal kernel, (F, L + 1) complex."""
    k = k[..., :length]
    if k.shape[1] == 2:
        return _RFFT.apply(torch.cat([k[:, 0], k[:, 1].flip(-1)], dim=-1))
    return _RFFT.apply(torch.nn.functional.pad(k[:, 0], (0, length)))


class _RFFT(torch.autograd.Function):
    """rfft of real x (..., n), n even, with the backward written out: Re(inverse FFT of the zero-filled
    one-sided gradient) is the unnormalised inverse rfft of the gradient halved except at bins 0 and n/2
    (autograd's generic backward runs a complex FFT of the full length)."""

    @staticmethod
    def forward(ctx, x):
        return torch.fft.rfft(x)

    @staticmethod
    def backward(ctx, grad):
        n = 2 * (grad.shape[-1] - 1)
        half = grad * 0.5
        half[..., :: n // 2].mul_(2)  # bins 0 and n/2
        return torch.fft.irfft(half, n=n, norm="forward")


def layer_spectra(layers: Sequence, length: int, cache: dict) -> torch.Tensor:
    """Transfer functions of ``layers`` for sequences of ``length``: rfft (n = 2L) of each layer's combined
    kernel plus its D, (layers, H, L + 1) complex, in one call (see ``layer_kernels``)."""
    layers = list(layers)
    kf = combined_fft(layer_kernels(layers, length, cache), length)
    d = layers[0].D if len(layers) == 1 else torch.stack([layer.D for layer in layers])
    kf = kf + d.reshape(-1, 1)
    return kf.reshape(len(layers), layers[0].features, -1)


def bidirectional_fft_conv(u: torch.Tensor, kernel_f: torch.Tensor, length: int) -> torch.Tensor:
    """Linear (not circular) convolution of u (..., H, L) with a combined kernel given by its rfft at n=2L.

    Its backward is written out (``_FFTConv``): the gradient for u is the correlation with the kernel,
    irfft(rfft(g) conj(K)), and the one for K sums rfft(g) conj(rfft(u)) over the batch with the one-sided
    spectrum's weights: two FFTs, where autograd's generic FFT backward takes twice the operators and a
    full complex FFT."""
    if u.shape[-1] != length:
        raise ValueError(f"bidirectional_fft_conv: input has {u.shape[-1]} samples, expected {length}")
    return _FFTConv.apply(u, kernel_f)


class _FFTConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, kernel_f):
        length = u.shape[-1]
        u_f = torch.fft.rfft(u, n=2 * length)
        ctx.save_for_backward(u_f, kernel_f)
        return torch.fft.irfft(u_f * kernel_f, n=2 * length)[..., :length]

    @staticmethod
    def backward(ctx, grad):
        u_f, kernel_f = ctx.saved_tensors
        length = kernel_f.shape[-1] - 1
        n = 2 * length
        grad_f = torch.fft.rfft(grad, n=n)
        grad_u = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_u = torch.fft.irfft(grad_f * kernel_f.conj(), n=n)[..., :length]
        if ctx.needs_input_grad[1]:
            # d/dK of the inverse rfft: 1/n, doubled for the bins whose mirror image is not stored
            grad_k = (grad_f * u_f.conj()).sum_to_size(kernel_f.shape).mul_(2 / n)
            grad_k[..., ::length].mul_(0.5)  # bins 0 and n/2
        return grad_u, grad_k
