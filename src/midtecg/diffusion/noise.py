"""Where the samplers' randomness comes from: noise sources, independent of any model.

A sampler asks a noise source for every random draw of a chain::

    noise(shape, draw) -> Tensor   # standard normal, float32, ``shape`` (batch first), on the source's device

``draw`` numbers the draws of one chain: 0 is the start x_T, ``k`` the noise added after the chain's k-th
model step (counting from 1). Two sources:

- ``IndexedNoise(seed, indices, device)``: one stream per row. Element ``e`` of row ``i`` of draw ``d`` is a
  fixed function of ``(seed, indices[i], d, e)`` and of nothing else: not of the other rows, the batch size
  or where the batch starts. ``midtecg.sample`` keys each ECG by its index in the whole job, so the same seed
  gives the same ECGs whatever the batch size, and ECG i sampled alone equals ECG i inside a batch.
- ``generator_noise(generator, device)``: consecutive draws of one ``torch.Generator`` (the global generator
  when None) for the whole batch, ``draw`` unused: row i then depends on the rows drawn with it. For direct
  users of the samplers (``sample(..., generator=...)``).

How ``IndexedNoise`` draws (counter-based, the idea of Philox / Random123: hash a counter under a key instead
of advancing a sequential state). The key is two 32-bit words k1, k2, each a chain ``s <- fmix(s ^ w)`` of the
murmur3 32-bit finaliser ``fmix`` over the words w = seed mod 2^32, seed >> 32, index mod 2^32, index >> 32,
draw, from its own starting constant. The flattened element counter ``c`` (C order over ``shape[1:]``)
becomes 32 random bits h(c) = fmix((fmix(c ^ k1) + k2) mod 2^32); counters ``2p`` and ``2p + 1`` give the
uniforms u1 = (h(2p) + 0.5) / 2^32 in (0, 1) and u2 = h(2p + 1) / 2^32 of one Box-Muller pair,
z_2p, z_2p+1 = sqrt(-2 ln u1) (cos 2 pi u2, sin 2 pi u2), computed in float64 (float32 on MPS, which has no
float64) and rounded to float32. Every integer operation keeps int64 values below 2^63 (32-bit words,
multipliers written as signed 32-bit numbers: the low 32 bits of the product are those of a uint32
multiply), so the bits are exact and the same on every device; the float64 step then rounds to the same
float32 everywhere but within a float64 ulp of a rounding boundary. The largest |z| is
sqrt(-2 ln 2^-33) = 6.76.

Why a counter hash and not one ``torch.Generator`` per row: a per-row generator costs a Python loop over the B
rows and B kernel launches per draw on a GPU, and its numbers depend on the device (torch's CPU and CUDA
generators are different algorithms), so the same seed would give other ECGs on a GPU unless every draw were
made on the CPU and copied over. The counter hash draws the whole batch in a fixed number of elementwise
kernels (about 35 on the batch, 20 on the B keys) whatever B, on the model's device, without a host round
trip, and gives the same numbers on every device. Its price on a CPU, measured with
``benchmarks/noise_draw.py`` (B = 64 ECGs x 8 leads x 1000 samples, one thread, four runs on a busy shared
machine): 9-17 ms a draw at best, 14-31 ms median, against 1.9-2.6 ms (best) for one ``torch.randn`` of the
batch and 2.1-3.0 ms for a loop over 64 per-row CPU generators; one forward pass of the built-in model on
that batch takes 2.3-3.4 s, so the noise stays about 1 % of a sampling step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["NoiseSource", "IndexedNoise", "generator_noise", "check_seed", "hash32"]

NoiseSource = Callable[[tuple[int, ...], int], torch.Tensor]

MASK32 = 0xFFFFFFFF
# murmur3's fmix32 as (shift, multiplier) steps, x ^= x >> shift then x *= multiplier (mod 2^32; 0: none). The
# multipliers are written as signed 32-bit numbers c' = c - 2^32: x * c' and x * c agree in their low 32
# bits, and |x * c'| < 2^63 for any 32-bit x, so int64 never overflows.
FMIX_STEPS = ((16, 0x85EBCA6B - 2**32), (13, 0xC2B2AE35 - 2**32), (16, 0))
# Starting words of the two key chains (hex digits of pi and e).
KEY_STARTS = (0x243F6A88, 0xB7E15162)


def hash32(x):
    """murmur3's 32-bit finaliser (a bijection of 32-bit words with full avalanche) of ``x``: a Python int, or
    an int64 tensor of values in [0, 2^32), which is hashed in place (one temporary at a time)."""
    for shift, multiplier in FMIX_STEPS:
        x ^= x >> shift
        if multiplier:
            x *= multiplier
            x &= MASK32
    return x


def check_seed(seed) -> int:
    """``seed`` as an int when it is a whole number in [0, 2^64), else ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a whole number in [0, 2^64), got {seed!r}")
    return int(seed)


class IndexedNoise:
    """A noise source with one stream per row: row ``i`` is keyed by ``(seed, indices[i])`` (see the module
    docstring). ``seed`` in [0, 2^64), ``indices`` distinct whole numbers in [0, 2^63)."""

    def __init__(self, seed: int, indices: Sequence[int] | np.ndarray | torch.Tensor, device="cpu"):
        seed = check_seed(seed)
        self.device = torch.device(device)
        index = torch.as_tensor(indices)
        if index.dim() != 1 or index.numel() < 1 or index.dtype.is_floating_point or index.dtype == torch.bool:
            raise ValueError(
                f"indices must be a non-empty 1-D sequence of whole numbers, got {tuple(index.shape)} {index.dtype}"
            )
        if bool((index < 0).any()):
            raise ValueError("indices must be non-negative")
        index = index.to(device=self.device, dtype=torch.int64)
        self.rows = index.numel()
        self.compute_dtype = torch.float32 if self.device.type == "mps" else torch.float64  # MPS has no float64
        low, high = index & MASK32, index >> 32
        self._chains = []
        for start in KEY_STARTS:  # seed words in Python (the same for every row), index words per row
            state = start
            for word in (seed & MASK32, seed >> 32):
                state = hash32(state ^ word)
            self._chains.append(hash32(hash32(low ^ state) ^ high))

    def __repr__(self) -> str:
        return f"IndexedNoise(rows={self.rows}, device={self.device})"

    def __call__(self, shape, draw: int) -> torch.Tensor:
        shape = tuple(int(s) for s in shape)
        if not shape or shape[0] != self.rows:
            raise ValueError(f"this noise source has {self.rows} rows; asked for shape {shape}")
        if not 0 <= draw <= MASK32:
            raise ValueError(f"draw must be in [0, 2^32), got {draw}")
        n = int(np.prod(shape[1:], dtype=np.int64))
        pairs = (n + 1) // 2
        if 2 * pairs > MASK32:
            raise ValueError(f"at most 2^32 - 1 values per row and draw, asked for {n}")
        k1, k2 = (hash32(chain ^ draw)[:, None] for chain in self._chains)
        bits = hash32(torch.arange(2 * pairs, device=self.device) ^ k1)
        bits += k2
        bits &= MASK32
        uniform = hash32(bits).view(self.rows, pairs, 2).to(self.compute_dtype)
        radius = uniform[..., 0].add_(0.5).mul_(2.0**-32).log_().mul_(-2.0).sqrt_()
        angle = uniform[..., 1].mul_(2.0 * math.pi * 2.0**-32)
        z = torch.empty(self.rows, pairs, 2, device=self.device)
        torch.mul(radius, torch.cos(angle), out=z[..., 0])
        torch.mul(radius, angle.sin_(), out=z[..., 1])
        return z.view(self.rows, 2 * pairs)[:, :n].reshape(shape)


def generator_noise(generator: torch.Generator | None, device) -> NoiseSource:
    """Consecutive draws of ``generator`` (the global generator when None) on the generator's own device,
    moved to ``device`` (a CPU generator gives the same noise whatever device runs the model); ``draw`` is
    unused, so the rows of a draw depend on the batch."""
    device = torch.device(device)

    def noise(shape, draw: int) -> torch.Tensor:
        if generator is None:
            return torch.randn(tuple(shape), device=device, dtype=torch.float32)
        return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=torch.float32).to(device)

    return noise
