"""SSSD-ECG denoiser (method.md section 2) with grouped condition embeddings (section 5).

``SSSDECG(config)(x_t (B, 8, L), t (B,), conditions {name: (B, size)}, drop {name: (B,) bool} | None)``
returns the predicted noise (B, 8, L).

Layout (published config: 8 leads, 256 channels, 36 blocks, S4 state 64, length 1000)::

    x -> 1x1 conv 8->256 (weight-norm) -> ReLU -> 36 x residual block -> sum of skips * sqrt(1/36)
      -> 1x1 conv 256->256 (weight-norm) -> ReLU -> 1x1 conv 256->8 (zero-initialised, plain)

    step t -> sinusoidal code (64 frequencies exp(-ln(10000) i / 63), [sin, cos]) -> Linear 128->512, swish
           -> Linear 512->512, swish                                     (shared by all blocks)
    conditions -> per group a bias-free Linear(size -> embed_dim), concatenated (cond_dim) (shared)

    block(x):  h = x + Linear(512->256)(step)            broadcast over time
               h = Conv1d(256->512, k=3, pad 1)(h)       weight-norm
               h = S4(h)                                 512 features
               h = h + Linear(cond_dim->512)(cond)       per-block projection
               h = S4(h)
               out = tanh(h[:, :256]) * sigmoid(h[:, 256:])
               res, skip = 1x1 conv(out), 1x1 conv(out)  weight-norm, 256->256 each
               return (x + res) * sqrt(0.5), skip

Weight normalisation (``torch.nn.utils.parametrizations.weight_norm``, one gain per output channel) is on
the input conv, the k=3 conv, the residual and skip convs and the first output conv; the final conv is
plain and zero-initialised. That is what makes the published count come out: 36 x 1,383,168 + 408,456 =
50,202,504 trainable parameters (the S4 A, B and step sizes are buffers). The weight-normalised convs start
from PyTorch's default conv initialisation (g = ||v||), as the reference effectively does.

``null_conditions=True`` adds one learned null embedding per group (zero-initialised) that replaces the
group's embedding where ``drop[name]`` is True (classifier-free guidance).

Speed: what depends only on the weights is computed for all blocks in one call per forward
(``weight_tensors``): the kernels of all 72 S4 layers (their C's stacked, see ``midtecg.models.s4_kernels``),
the weight norms of each kind of conv, the step and condition projections of all blocks as one Linear each
(stacked weights). Parameters keep their own tensors and names (``torch.stack``), so the state dict is the
one described above. Inside ``cached_kernels()`` these tensors are computed once. The last block's residual
conv, whose output is never used, is not evaluated. ``set_activation_checkpointing(True)`` recomputes each
block's activations in backward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint

from midtecg.models.config import SSSDConfig
from midtecg.models.s4 import S4Layer
from midtecg.models.s4_kernels import layer_spectra

__all__ = ["SSSDECG", "ResidualBlock", "step_embedding"]


def step_embedding(t: torch.Tensor, dim: int = 128) -> torch.Tensor:
    """Sinusoidal code of diffusion steps t (B,): [sin(t f_i), cos(t f_i)], f_i = exp(-ln(10000) i / (dim/2 - 1))."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1)))
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _wn_conv(c_in: int, c_out: int, kernel_size: int = 1) -> nn.Conv1d:
    return weight_norm(nn.Conv1d(c_in, c_out, kernel_size, padding=(kernel_size - 1) // 2))


class ResidualBlock(nn.Module):
    """One SSSD-ECG residual block on ``channels`` (the S4 layers run on 2 x channels features).

    Its forward takes what depends only on the parameters or is shared by all blocks already computed (in
    one call for all blocks, by ``SSSDECG``): the step and condition projections (B, channels, 1) and
    (B, 2 channels, 1), the weight-normalised conv weights and the S4 layers' transfer functions."""

    def __init__(self, channels: int, step_dim: int, cond_dim: int, length: int, state_size: int, variant: str):
        super().__init__()
        self.channels = channels
        self.step_proj = nn.Linear(step_dim, channels)
        self.conv = _wn_conv(channels, 2 * channels, 3)
        self.s4_1 = S4Layer(2 * channels, length, state_size, variant)
        self.cond_proj = nn.Linear(cond_dim, 2 * channels)
        self.s4_2 = S4Layer(2 * channels, length, state_size, variant)
        self.res_conv = _wn_conv(channels, channels)
        self.skip_conv = _wn_conv(channels, channels)

    def forward(
        self,
        x: torch.Tensor,
        step_bias: torch.Tensor,
        cond_bias: torch.Tensor,
        conv_weight: torch.Tensor,
        s4_1: tuple[torch.Tensor, torch.Tensor],
        s4_2: tuple[torch.Tensor, torch.Tensor],
        skip_weight: torch.Tensor,
        res_weight: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(residual output, skip); ``s4_1``, ``s4_2``: each S4 layer's (transfer function, Linear_out
        weight); the residual output is None without ``res_weight`` (the last block's is never used)."""
        h = F.conv1d(x + step_bias, conv_weight, self.conv.bias, padding=1)
        h = self.s4_1(h, *s4_1)
        h = self.s4_2(h + cond_bias, *s4_2)
        gate, value = h.chunk(2, dim=1)
        out = torch.tanh(gate) * torch.sigmoid(value)
        skip = F.conv1d(out, skip_weight, self.skip_conv.bias)
        if res_weight is None:
            return None, skip
        return (x + F.conv1d(out, res_weight, self.res_conv.bias)) * math.sqrt(0.5), skip


def _weight_norms(convs: list[nn.Conv1d]) -> torch.Tensor:
    """The weight-normalised weights of equally shaped convs, (len(convs), out, in, k), in one op."""
    g = torch.stack([conv.parametrizations.weight.original0 for conv in convs])
    v = torch.stack([conv.parametrizations.weight.original1 for conv in convs])
    return torch._weight_norm(v.flatten(0, 1), g.flatten(0, 1), 0).view_as(v)


class SSSDECG(nn.Module):
    """The SSSD-ECG denoiser: predicts the noise in x_t given the step t and the conditions."""

    def __init__(self, config: SSSDConfig | None = None):
        super().__init__()
        config = SSSDConfig() if config is None else config
        if not isinstance(config, SSSDConfig):
            raise TypeError(f"SSSDECG expects an SSSDConfig, got {type(config).__name__}")
        self.config = config
        c = config.channels
        self.input_conv = _wn_conv(config.in_leads, c)
        self.step_mlp = nn.Sequential(
            nn.Linear(config.step_embed_dim, config.step_hidden),
            nn.SiLU(),
            nn.Linear(config.step_hidden, config.step_hidden),
            nn.SiLU(),
        )
        self.cond_embed = nn.ModuleDict(
            {g.name: nn.Linear(g.size, g.embed_dim, bias=False) for g in config.condition_groups}
        )
        if config.cond_init == "normal":
            for embed in self.cond_embed.values():
                nn.init.normal_(embed.weight, std=1.0)
        if config.null_conditions:
            self.null_embed = nn.ParameterDict(
                {g.name: nn.Parameter(torch.zeros(g.embed_dim)) for g in config.condition_groups}
            )
        else:
            self.null_embed = None
        self.blocks = nn.ModuleList(
            [
                ResidualBlock(
                    c, config.step_hidden, config.cond_dim, config.length, config.state_size, config.s4_variant
                )
                for _ in range(config.blocks)
            ]
        )
        self.skip_out = _wn_conv(c, c)
        self.out_conv = nn.Conv1d(c, config.in_leads, 1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)
        self.checkpoint_activations = False
        self._frozen: dict | None = None  # weight tensors by length, inside cached_kernels()
        self._kernel_constants: dict = {}  # the S4 kernels' buffer-only part (s4_kernels)
        self.register_load_state_dict_post_hook(SSSDECG._clear_kernel_constants)

    # ---- helpers -------------------------------------------------------------------------------------
    def s4_layers(self) -> list[S4Layer]:
        return [layer for block in self.blocks for layer in (block.s4_1, block.s4_2)]

    @contextlib.contextmanager
    def cached_kernels(self):
        """Inside the context the tensors that depend only on the weights (S4 transfer functions, weight
        norms, stacked projections) are computed once per length (no grad) and reused: use it for sampling,
        where the same weights run for every step."""
        if self._frozen is not None:  # nested: the outer context owns the cache
            yield self
            return
        self._frozen = {}
        try:
            yield self
        finally:
            self._frozen = None

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Recompute each residual block's activations in backward instead of keeping them: about a third
        more compute for the activation memory of one block instead of all (``train.checkpoint_activations``)."""
        self.checkpoint_activations = bool(enabled)

    def _clear_kernel_constants(self, *_) -> None:
        self._kernel_constants.clear()

    def __getstate__(self):  # copies and pickles leave the caches behind
        state = super().__getstate__().copy()
        state["_frozen"], state["_kernel_constants"] = None, {}
        return state

    def weight_tensors(self, length: int) -> dict[str, torch.Tensor]:
        """What the blocks need that depends only on the weights, for all blocks in one call each:
        ``kernel_f`` (2 blocks, 2 channels, L + 1) the S4 transfer functions and ``out_w`` (2 blocks,
        2 channels, 2 channels, 1) their Linear_out weights as 1x1 conv weights, ``conv``, ``res`` (the
        last block has none), ``skip`` the weight-normalised conv weights stacked over blocks, ``input``
        and ``skip_out`` the weight-normalised weights of the input and output convs, and the stacked step
        / condition projections ``step_w``, ``step_b``, ``cond_w``, ``cond_b`` (one Linear for
        all blocks). Parameters keep their own tensors (torch.stack), so the state dict is unchanged."""
        if self._frozen is not None:
            frozen = self._frozen.get(length)
            if frozen is None:
                with torch.no_grad():
                    frozen = self._frozen[length] = self._weight_tensors(length)
            return frozen
        return self._weight_tensors(length)

    def _weight_tensors(self, length: int) -> dict[str, torch.Tensor]:
        blocks = list(self.blocks)
        stack = lambda get: torch.stack([get(block) for block in blocks]).flatten(0, 1)
        return {
            "kernel_f": layer_spectra(self.s4_layers(), length, self._kernel_constants),
            "out_w": torch.stack([layer.out.weight for layer in self.s4_layers()])[..., None],
            "conv": _weight_norms([block.conv for block in blocks]),
            "res": _weight_norms([block.res_conv for block in blocks[:-1]]) if len(blocks) > 1 else None,
            "skip": _weight_norms([block.skip_conv for block in blocks]),
            "input": self.input_conv.weight,
            "skip_out": self.skip_out.weight,
            "step_w": stack(lambda b: b.step_proj.weight),
            "step_b": stack(lambda b: b.step_proj.bias),
            "cond_w": stack(lambda b: b.cond_proj.weight),
            "cond_b": stack(lambda b: b.cond_proj.bias),
        }

    def embed_conditions(
        self,
        conditions: Mapping[str, torch.Tensor],
        drop: Mapping[str, torch.Tensor] | None,
        batch: int,
        device: torch.device,
    ) -> torch.Tensor:
        """The condition vector (B, cond_dim) shared by all blocks."""
        if not isinstance(conditions, Mapping):
            raise TypeError(f"conditions must be a dict of tensors by group name, got {type(conditions).__name__}")
        groups = self.config.condition_groups
        expected = [g.name for g in groups]
        missing = [n for n in expected if n not in conditions]
        unknown = [n for n in conditions if n not in expected]
        if missing or unknown:
            raise ValueError(
                f"conditions must have exactly the groups {expected}; missing {missing}, unknown {unknown}"
            )
        if drop is not None:
            if self.null_embed is None:
                raise ValueError(
                    "drop was given but the model has no null embeddings "
                    "(build it with SSSDConfig(null_conditions=True))"
                )
            if not isinstance(drop, Mapping):
                raise TypeError(f"drop must be a dict of bool tensors by group name, got {type(drop).__name__}")
            unknown = [n for n in drop if n not in expected]
            if unknown:
                raise ValueError(f"drop names unknown condition groups {unknown}; groups are {expected}")
        parts = []
        for group in groups:
            value = conditions[group.name]
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"condition {group.name!r} must be a tensor, got {type(value).__name__}")
            if value.shape != (batch, group.size):
                raise ValueError(
                    f"condition {group.name!r} must have shape ({batch}, {group.size}), got {tuple(value.shape)}"
                )
            embed = self.cond_embed[group.name]
            emb = embed(value.to(device=device, dtype=embed.weight.dtype))
            mask = None if drop is None else drop.get(group.name)
            if mask is not None:
                if not isinstance(mask, torch.Tensor) or mask.shape != (batch,):
                    raise ValueError(
                        f"drop[{group.name!r}] must be a bool tensor of shape ({batch},), "
                        f"got {getattr(mask, 'shape', type(mask).__name__)}"
                    )
                null = self.null_embed[group.name].to(emb.dtype)
                emb = torch.where(mask.to(device=device, dtype=torch.bool)[:, None], null, emb)
            parts.append(emb)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    # ---- forward -------------------------------------------------------------------------------------
    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        conditions: Mapping[str, torch.Tensor],
        drop: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        cfg = self.config
        if x_t.dim() != 3 or x_t.shape[1] != cfg.in_leads:
            raise ValueError(f"x_t must have shape (batch, {cfg.in_leads}, length), got {tuple(x_t.shape)}")
        batch, length = x_t.shape[0], x_t.shape[2]
        if length > cfg.length:
            raise ValueError(f"the model was built for at most {cfg.length} samples, got {length}")
        t = torch.as_tensor(t, device=x_t.device)
        if t.dim() == 0:
            t = t.expand(batch)
        elif t.dim() == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.shape != (batch,):
            raise ValueError(f"t must have shape ({batch},), got {tuple(t.shape)}")
        cond = self.embed_conditions(conditions, drop, batch, x_t.device)
        step = self.step_mlp(step_embedding(t, cfg.step_embed_dim).to(self.step_mlp[0].weight.dtype))

        weights = self.weight_tensors(length)
        n_blocks, c = len(self.blocks), cfg.channels
        step_bias = F.linear(step, weights["step_w"], weights["step_b"]).view(batch, n_blocks, c, 1).unbind(1)
        cond_bias = F.linear(cond, weights["cond_w"], weights["cond_b"]).view(batch, n_blocks, 2 * c, 1).unbind(1)
        s4 = list(zip(weights["kernel_f"].unbind(0), weights["out_w"].unbind(0)))
        conv, skip_w = weights["conv"].unbind(0), weights["skip"].unbind(0)
        res = weights["res"].unbind(0) if weights["res"] is not None else ()

        # The residual stream and the skip sum stay in (at least) float32 under bf16 autocast.
        stream = torch.promote_types(x_t.dtype, torch.float32)
        h = F.relu(F.conv1d(x_t, weights["input"], self.input_conv.bias)).to(stream)
        skip = None
        recompute = self.checkpoint_activations and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            args = (
                h,
                step_bias[i],
                cond_bias[i],
                conv[i],
                s4[2 * i],
                s4[2 * i + 1],
                skip_w[i],
                res[i] if i < len(res) else None,
            )
            h, s = (
                checkpoint(block, *args, use_reentrant=False, preserve_rng_state=False) if recompute else block(*args)
            )
            skip = s.to(stream) if skip is None else skip + s
        skip = skip * math.sqrt(1.0 / len(self.blocks))
        return self.out_conv(F.relu(F.conv1d(skip, weights["skip_out"], self.skip_out.bias)))

    def extra_repr(self) -> str:
        return f"config={self.config}"
