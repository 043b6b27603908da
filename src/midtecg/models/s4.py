"""Bidirectional S4 / S4D layers (method.md section 2).

One layer on ``H`` features maps ``u`` (B, H, L) to::

    y = LayerNorm_H( u + Linear_out(GELU(K * u + D u)) )

where ``K * u`` is a non-causal convolution made of a causal kernel (the forward SSM) and an anti-causal
kernel (the backward SSM), both of length L, applied with a zero-padded FFT of size 2L (no wrap-around).

State-space model per feature h (continuous time, complex diagonal basis, ``N`` = state size)::

    x'(t) = A x(t) + B u(t),   y(t) = Re(C x(t))

Only N/2 modes are stored; each has an implicit complex-conjugate partner, so the SSM is a real system of
order N and its kernel is real.

Variants (``variant=``):

``"s4"`` (default; the SSSD-ECG reference)
    HiPPO-LegS in normal-plus-low-rank (NPLR) form, A = Lambda - P P^*, written in the eigenbasis V of the
    normal part (``Lambda = -1/2 + i mu``). Bilinear discretisation with step size ``dt_h`` per feature
    (log-uniform in [dt_min, dt_max]). A, B and the step size are buffers (frozen). The trainable C is kept
    in its length-corrected form ``C~ = C (I - A_bar^L)``, computed at initialisation from a complex-normal
    C, so that the generating function of the L-tap kernel evaluated at the L-th roots of unity is simply
    ``K^(z) = C~ (I - A_bar z)^{-1} B_bar``. With the bilinear transform this equals::

        K^(z) = 2 C~ (alpha I - beta A)^{-1} B,   alpha = (2/dt)(1 - z),  beta = 1 + z,

    and with ``R = diag(1 / (alpha - beta Lambda))`` and the Woodbury identity for the rank-1 term::

        K^(z) = 2 [ C~ R B - beta (C~ R P)(P^* R B) / (1 + beta P^* R P) ]

    Each bracket is a Cauchy sum over the N modes (each mode plus its conjugate partner). It is evaluated at
    the L/2 + 1 non-negative frequencies ``z_f = exp(-2 pi i f / L)`` and the kernel is ``irfft(K^, L)``.
    Writing ``alpha - beta lambda`` instead of ``g - lambda`` with ``g = alpha / beta`` keeps z = -1 (the
    Nyquist frequency, beta = 0) finite.

``"s4d"`` (S4D-LegS) and ``"s4d-lin"`` (S4D-Lin)
    Diagonal A (the NPLR diagonal part Lambda with its B, or ``-1/2 + i pi n`` with B = 1), zero-order-hold
    discretisation, Vandermonde kernel ``k_l = 2 Re sum_n C_n B_bar_n exp(dt lambda_n l)`` evaluated in real
    arithmetic (no complex tensors, so it compiles). C is stored as is (no length correction needed).

Bidirectional convention (as in the reference): the forward kernel k0 covers lags 0..L-1 (``y[n] +=
sum_j k0[j] u[n - j]``); the backward kernel k1 is applied to *future* samples only, ``y[n] += sum_j k1[j]
u[n + 1 + j]``, so lag 0 is counted once (plus ``D u``). In FFT terms the combined kernel of length 2L is
``cat(k0, flip(k1))``. Equivalently, the backward SSM runs the recurrence from the end of the sequence and
its output at n is read from the state after it has consumed ``u[n + 1]``.

Parameters per layer (H = 512, N = 64, bidirectional): Linear_out 262,656 + C 65,536 (2 x 512 x 32 complex
as real pairs) + D 512 + LayerNorm 1,024. Linear_out is applied as a 1x1 convolution on (B, H, L).

Speed notes:

* The kernel depends only on parameters and buffers: it is computed once per forward (batch independent)
  and ``cached_kernel()`` keeps its FFT for reuse across calls (sampling, all steps).
* The kernel is linear in C and A, B and the step sizes are frozen, so it is C times a constant computed
  once (``midtecg.models.s4_kernels``: the basis of ``"s4"``, 64 x L numbers per feature at N = 64, kept
  while it fits a memory budget; two small Vandermonde tables for S4D). ``SSSDECG`` computes the kernels
  of all its layers in one call this way; a layer used on its own does the same for itself.
* D enters as a lag-0 tap of the kernel (added to its FFT), so the layer is FFT convolution, GELU, a 1x1
  convolution (Linear_out), the residual and LayerNorm: about a dozen operators per forward.
* The FFT convolution runs in float32 (autocast disabled inside the layer, also under bf16); Linear_out and
  LayerNorm follow the ambient autocast.
* torch.compile: no graph breaks once the kernel constants exist (they are built eagerly on the first
  call). Inductor does not generate code for complex tensors and falls back to eager ATen for them (rfft/irfft
  and the spectral product).
* Initialisation of ``"s4"`` computes A_bar^L for every feature (nine batched 64x64 squarings), about
  0.1 s per layer on one CPU core.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from midtecg.models.config import S4_VARIANTS
from midtecg.models.s4_kernels import bidirectional_fft_conv, combined_fft, layer_kernels

__all__ = ["S4Layer", "hippo_legs", "nplr_legs", "bidirectional_fft_conv"]


# --------------------------------------------------------------------------------------------------------
# HiPPO-LegS and its NPLR form (numpy, float64, cached per state size)
# --------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def hippo_legs(state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegS (A, B) in the Legendre basis: A[n, k] = -sqrt(2n+1) sqrt(2k+1) for n > k, -(n+1) on the
    diagonal, 0 above; B[n] = sqrt(2n+1). Read-only float64 arrays."""
    n = np.arange(state_size, dtype=np.float64)
    q = np.sqrt(2 * n + 1)
    a = -np.tril(np.outer(q, q), -1) - np.diag(n + 1)
    b = q.copy()
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


@functools.lru_cache(maxsize=8)
def nplr_legs(state_size: int) -> dict[str, np.ndarray]:
    """NPLR form of HiPPO-LegS: A = V (Lambda - P P^*) V^* with V unitary.

    ``A + p p^T`` (p[n] = sqrt(n + 1/2)) is ``-1/2 I`` plus a skew-symmetric matrix, hence normal; its
    eigenvalues are ``-1/2 +- i mu``. Returns the N/2 modes with mu > 0 (ascending): ``lam`` (N/2,),
    ``P`` = V_half^* p and ``B`` = V_half^* b (N/2,), and ``V`` (N, N/2) complex128. The other N/2 modes are
    the complex conjugates (V_full = [V, conj(V)])."""
    if state_size < 2 or state_size % 2:
        raise ValueError(f"state_size must be an even number >= 2, got {state_size}")
    a, b = hippo_legs(state_size)
    n = np.arange(state_size, dtype=np.float64)
    p = np.sqrt(n + 0.5)
    skew = a + np.outer(p, p) + 0.5 * np.eye(state_size)
    mu, vec = np.linalg.eigh(-1j * skew)  # skew = i * (-i skew), -i skew Hermitian
    keep = mu > 0
    if keep.sum() != state_size // 2:
        raise RuntimeError(f"NPLR: expected {state_size // 2} positive frequencies, found {keep.sum()}")
    v = vec[:, keep]
    out = {
        "lam": -0.5 + 1j * mu[keep],
        "P": v.conj().T @ p,
        "B": v.conj().T @ b,
        "V": v,
    }
    for value in out.values():
        value.setflags(write=False)
    return out


def _diagonal_init(variant: str, state_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(lam, B, P or None) for the N/2 stored modes."""
    if variant == "s4d-lin":
        half = state_size // 2
        return -0.5 + 1j * np.pi * np.arange(half), np.ones(half, dtype=np.complex128), None
    nplr = nplr_legs(state_size)
    return nplr["lam"], nplr["B"], (nplr["P"] if variant == "s4" else None)


# --------------------------------------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------------------------------------


class S4Layer(nn.Module):
    """Bidirectional S4 block on ``features`` channels: (B, H, L) -> (B, H, L).

    ``y = LayerNorm(u + Linear_out(GELU(SSMconv(u) + D u)))`` with LayerNorm over the features.

    Args:
        features: H.
        length: the longest sequence (and, for ``"s4"``, the length the kernel's C~ is corrected for).
            Shorter inputs use the first L taps of the kernel.
        state_size: N (even); N/2 complex modes are stored.
        variant: ``"s4"`` (HiPPO-LegS NPLR, bilinear), ``"s4d"`` (S4D-LegS, ZOH) or ``"s4d-lin"``.
        bidirectional: forward + backward kernels (two sets of C); else causal.
        dt_min, dt_max: range of the log-uniform step sizes (one per feature).
    """

    def __init__(
        self,
        features: int,
        length: int,
        state_size: int = 64,
        variant: str = "s4",
        bidirectional: bool = True,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ):
        super().__init__()
        if variant not in S4_VARIANTS:
            raise ValueError(f"unknown S4 variant {variant!r}; expected one of {S4_VARIANTS}")
        if features < 1 or length < 1:
            raise ValueError(f"features and length must be positive, got {features}, {length}")
        if state_size < 2 or state_size % 2:
            raise ValueError(f"state_size must be an even number >= 2, got {state_size}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.features, self.length, self.state_size = features, length, state_size
        self.variant, self.bidirectional = variant, bidirectional
        channels = 2 if bidirectional else 1
        half = state_size // 2

        lam, b, p = _diagonal_init(variant, state_size)
        as_real = lambda x: torch.view_as_real(torch.as_tensor(np.array(x, dtype=np.complex128))).float()
        log_dt = torch.rand(features) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.register_buffer("log_dt", log_dt)
        self.register_buffer("lam", as_real(lam))
        self.register_buffer("B", as_real(b))
        if p is not None:
            self.register_buffer("P", as_real(p))
        else:
            self.P = None
        c = torch.randn(channels, features, half, dtype=torch.complex64)
        if variant == "s4" and not c.is_meta:
            c = self._length_corrected(c)
        self.C = nn.Parameter(torch.view_as_real(c).contiguous())
        self.D = nn.Parameter(torch.randn(features))
        self.out = nn.Linear(features, features)
        self.norm = nn.LayerNorm(features)
        self._cache: dict | None = None  # transfer functions by length, inside cached_kernel()
        self._constants: dict = {}  # the kernel's buffer-only part (s4_kernels)

    # ---- initialisation ------------------------------------------------------------------------------
    @torch.no_grad()
    def _length_corrected(self, c: torch.Tensor) -> torch.Tensor:
        """C~ = C (I - A_bar^L) for a complex-diagonal-basis C (ch, H, N/2); computed in the real Legendre
        basis, where A_bar is lower triangular (float32 is accurate to ~1e-6 here: the powers stay <= 1)."""
        nplr = nplr_legs(self.state_size)
        v = torch.tensor(nplr["V"], dtype=torch.complex64)  # (N, N/2)
        a_bar = _legs_bilinear(self.state_size, torch.exp(self.log_dt.double())).float()  # (H, N, N)
        c_real = 2 * (c @ v.conj().T).real  # (ch, H, N): C_full V_full^*
        c_real = c_real - _rows_times_power(c_real.transpose(0, 1), a_bar, self.length).transpose(0, 1)
        return c_real.to(torch.complex64) @ v  # back to the N/2 stored modes

    def _load_from_state_dict(self, *args, **kwargs):
        self._constants.clear()  # new buffers (compiled code does not re-check them)
        super()._load_from_state_dict(*args, **kwargs)

    def __getstate__(self):  # copies and pickles leave the caches behind
        state = super().__getstate__().copy()
        state["_cache"], state["_constants"] = None, {}
        return state

    # ---- kernels -------------------------------------------------------------------------------------
    def _compute_dtype(self) -> torch.dtype:
        return torch.float64 if self.C.dtype == torch.float64 else torch.float32

    def kernel(self, length: int | None = None) -> torch.Tensor:
        """Time-domain kernels (channels, H, L): [0] causal (forward), [1] anti-causal (backward)."""
        length = self.length if length is None else int(length)
        if not 1 <= length <= self.length:
            raise ValueError(f"S4 layer was built for sequences up to {self.length} samples, got {length}")
        return layer_kernels([self], length, self._constants).transpose(0, 1)

    def kernel_fft(self, length: int) -> torch.Tensor:
        """rfft (n = 2L) of the combined non-causal kernel, (H, L + 1) complex; cached inside
        ``cached_kernel()``."""
        if self._cache is not None:
            key = (length, self.C.device, self.C.dtype)
            kf = self._cache.get(key)
            if kf is None:
                with torch.no_grad():
                    kf = combined_fft(self.kernel(length).transpose(0, 1), length)
                self._cache[key] = kf
            return kf
        return combined_fft(self.kernel(length).transpose(0, 1), length)

    @contextlib.contextmanager
    def cached_kernel(self):
        """Compute the kernel once (no grad, lazily per length) and reuse it until exit."""
        if self._cache is not None:  # nested: the outer context owns the cache
            yield self
            return
        self._cache = {}
        try:
            yield self
        finally:
            self._cache = None

    # ---- forward -------------------------------------------------------------------------------------
    def _check_input(self, u: torch.Tensor) -> None:
        if u.dim() != 3 or u.shape[1] != self.features:
            raise ValueError(f"S4Layer expects (batch, {self.features}, length), got {tuple(u.shape)}")

    def ssm_conv(self, u: torch.Tensor) -> torch.Tensor:
        """The SSM part alone, K * u (without D), in float32 (float64 for a float64 layer)."""
        self._check_input(u)
        length = u.shape[-1]
        kf = self.kernel_fft(length)
        with _no_autocast(u):
            return bidirectional_fft_conv(u.to(self._compute_dtype()), kf, length)

    def forward(
        self, u: torch.Tensor, kernel_f: torch.Tensor | None = None, out_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``kernel_f``: the layer's transfer function for this length, rfft (n = 2L) of the kernel with D
        added at lag 0, (H, L + 1); ``out_weight``: Linear_out's weight as a 1x1 conv weight (H, H, 1). Both
        as ``SSSDECG`` computes them for all its layers at once; computed here when not given."""
        self._check_input(u)
        length = u.shape[-1]
        if kernel_f is None:
            kernel_f = self.kernel_fft(length) + self.D[:, None]
        if out_weight is None:
            out_weight = self.out.weight[:, :, None]
        with _no_autocast(u):
            y = F.gelu(bidirectional_fft_conv(u.to(self._compute_dtype()), kernel_f, length))
        y = F.conv1d(y.to(out_weight.dtype), out_weight, self.out.bias)  # Linear_out, follows autocast
        # The sum takes the wider dtype; LayerNorm (over the features) is fp32 under autocast.
        return self.norm((u + y).transpose(1, 2)).transpose(1, 2)

    # ---- reference state-space matrices (tests, analysis) --------------------------------------------
    @torch.no_grad()
    def discrete_ssm(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Discrete SSM in the full complex diagonal basis (float64): A_bar (H, N, N), B_bar (H, N) and the
        actual C (channels, H, N) (for ``"s4"`` recovered from C~ as C~ (I - A_bar^L)^{-1}). The recurrence
        ``x_l = A_bar x_{l-1} + B_bar u_l``, ``y_l = Re(C x_l)`` reproduces the causal kernel."""
        f64 = torch.float64
        lam = _as_complex(self.lam.to(f64))
        b = _as_complex(self.B.to(f64))
        c = _as_complex(self.C.detach().to(f64))
        dt = torch.exp(self.log_dt.to(f64)).to(torch.complex128)[:, None]  # (H, 1)
        lam_f, b_f, c_f = torch.cat([lam, lam.conj()]), torch.cat([b, b.conj()]), torch.cat([c, c.conj()], -1)
        n, h = lam_f.shape[0], self.features
        eye = torch.eye(n, dtype=torch.complex128)
        if self.variant == "s4":
            p = _as_complex(self.P.to(f64))
            p_f = torch.cat([p, p.conj()])
            a = torch.diag(lam_f) - torch.outer(p_f, p_f.conj())
            left = eye - dt[..., None] / 2 * a
            a_bar = torch.linalg.solve(left, eye + dt[..., None] / 2 * a)
            b_bar = torch.linalg.solve(left, (dt * b_f)[..., None])[..., 0]
            correction = eye - torch.linalg.matrix_power(a_bar, self.length)  # (H, N, N)
            # C~ = C (I - A^L)  =>  C^T = solve((I - A^L)^T, C~^T)
            c_f = torch.linalg.solve(correction.transpose(-1, -2), c_f[..., None])[..., 0]
        else:
            da = torch.exp(dt * lam_f)  # (H, N)
            a_bar = torch.diag_embed(da)
            b_bar = (da - 1) / lam_f * b_f
        return a_bar, b_bar.expand(h, n), c_f

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, length={self.length}, state_size={self.state_size}, "
            f"variant={self.variant!r}, bidirectional={self.bidirectional}"
        )


def _as_complex(x: torch.Tensor) -> torch.Tensor:
    """(..., 2) real pairs -> complex."""
    return torch.complex(x[..., 0], x[..., 1])


def _legs_bilinear(state_size: int, dt: torch.Tensor) -> torch.Tensor:
    """A_bar = (I - dt/2 A)^{-1} (I + dt/2 A) = 2 (I - dt/2 A)^{-1} - I for HiPPO-LegS A, one per step size
    dt (H,), in the real Legendre basis (H, N, N), dt's dtype.

    I - dt/2 A = diag(1 + dt (n+1)/2) + dt/2 diag(q) [ones below the diagonal] diag(q), q = sqrt(2n+1), so
    forward substitution is a running sum: row n of the inverse is
    (e_n - dt/2 q_n sum_{k<n} q_k row_k) / (1 + dt (n+1)/2). (Batched LAPACK triangular solves are
    erratically slow on small CPUs; this is N vectorised steps.)"""
    n = torch.arange(state_size, dtype=dt.dtype, device=dt.device)
    q = torch.sqrt(2 * n + 1)
    half = (dt / 2)[:, None]  # (H, 1)
    diag = 1 + half * (n + 1)  # (H, N)
    eye = torch.eye(state_size, dtype=dt.dtype, device=dt.device)
    running = torch.zeros(dt.shape[0], state_size, dtype=dt.dtype, device=dt.device)  # sum_k q_k row_k
    rows = []
    for i in range(state_size):
        row = (eye[i] - half * q[i] * running) / diag[:, i : i + 1]
        running = running + q[i] * row
        rows.append(row)
    return 2 * torch.stack(rows, dim=1) - eye


def _rows_times_power(rows: torch.Tensor, x: torch.Tensor, exponent: int, tiny: float = 1e-19) -> torch.Tensor:
    """rows @ x ** exponent for rows (..., R, N) and x (..., N, N), by repeated squaring of x (only the
    squarings are matrix products). Entries below ``tiny`` are zeroed after each squaring: the powers of a
    stable A_bar decay into float32 subnormals, which make CPU matmuls very slow, and terms below 1e-19
    cannot matter at float32 precision (the powers' entries stay <= 1)."""
    flush = lambda y: F.hardshrink(y, tiny)  # 0 where |y| <= tiny
    base = flush(x)
    while exponent:
        if exponent & 1:
            rows = rows @ base  # small: subnormals here cost nothing noticeable
        exponent >>= 1
        if exponent:
            base = flush(base @ base)
    return rows


def _no_autocast(t: torch.Tensor):
    if t.device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=t.device.type, enabled=False)
    return contextlib.nullcontext()
