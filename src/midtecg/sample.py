"""Conditions in, 12-lead ECGs out.

``load_generator`` rebuilds a trained generator from a checkpoint folder (safetensors + JSON, no pickle);
``sample`` runs a sampler from ``midtecg.diffusion`` on it, batch by batch, with optional classifier-free
guidance, and returns float32 millivolt signals in WFDB lead order with the conditions attached.

What the network predicts (config.json ``parameterization``: eps, v or rectified flow; absent: eps), the
per-lead scale it works in (``signal.lead_scale``; absent: millivolts) and its default sampler (``sampling``:
``{"sampler": ..., "steps": ...}``; absent: ddpm for diffusion models, heun with 20 steps for flow models)
are read from the checkpoint, so every sampler gets the right conversion and the output is always in mV.

Randomness: each ECG has its own noise stream, keyed by the seed and the ECG's index in the whole job
(``midtecg.diffusion.noise.IndexedNoise``), so the same seed gives the same ECGs whatever the batch size, and
one ECG sampled alone (with its index) is the one it is inside the job.

Every step of a batch runs the same weights: everything that depends only on them (S4 transfer functions,
weight norms) is computed once (``model.cached_kernels()``), and a step queues its kernels without waiting
for the device. On CUDA the model evaluation can be compiled (``compile=True``) and replayed as a CUDA
graph (``cuda_graph=True``, captured once per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from midtecg.data.conditions import ConditionEncoder
from midtecg.data.leads import WFDB_LEADS, to_twelve_leads
from midtecg.device import resolve_device
from midtecg.diffusion import IndexedNoise, NoiseSchedule, Parameterization, make_parameterized_sampler
from midtecg.diffusion.noise import check_seed
from midtecg.models.config import SSSDConfig
from midtecg.models.files import read_model_files
from midtecg.models.sssd import SSSDECG


@dataclass
class ECGGenerator:
    model: SSSDECG
    schedule: NoiseSchedule
    encoder: ConditionEncoder
    fs: int
    length: int
    config: dict
    source: str
    parameterization: Parameterization | None = None  # None: epsilon prediction on ``schedule``
    lead_scale: np.ndarray | None = None  # (8,) mV per model unit; None: the model works in mV

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def supports_guidance(self) -> bool:
        return bool(self.model.config.null_conditions)


@dataclass
class SampledECGs:
    signals: np.ndarray  # (N, 12, L) float32 mV, WFDB lead order
    conditions: pd.DataFrame  # one row per ECG
    fs: int
    lead_names: tuple[str, ...] = WFDB_LEADS


def load_generator(path: str | Path, device: str | torch.device | None = None) -> ECGGenerator:
    """Load a generator from a checkpoint folder, a run folder (its newest checkpoint) or an exported model."""
    config, weights = read_model_files(path)
    try:
        model_config = SSSDConfig.from_dict(config["model"])
        encoder = ConditionEncoder.from_dict(config["conditions"])
        schedule = NoiseSchedule.from_dict(config["schedule"])
        fs, length = int(config["signal"]["fs"]), int(config["signal"]["length"])
        param = Parameterization.from_dict(config.get("parameterization"), schedule)
        scale = config["signal"].get("lead_scale")
        scale = None if scale is None else np.asarray(scale, dtype=np.float32).reshape(model_config.in_leads)
        _sampling_defaults(config.get("sampling"))  # checked here, read by ``sample``
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: config.json is not a midtecg generator config ({error})") from None
    model = SSSDECG(model_config)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match the model config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    device = resolve_device(device)
    model.to(device).eval().requires_grad_(False)
    return ECGGenerator(model, schedule, encoder, fs, length, config, str(path), param, scale)


def _sampling_defaults(data) -> dict:
    data = dict(data or {})
    unknown = set(data) - {"sampler", "steps"}
    if unknown:
        raise ValueError(f"unknown sampling fields {sorted(unknown)}")
    return data


def default_sampler(generator: ECGGenerator) -> tuple[str | None, int | None]:
    """The sampler and step count a checkpoint names as its default (config.json ``sampling``), else
    (None, None): ddpm for diffusion models, heun for flow models."""
    sampling = _sampling_defaults(generator.config.get("sampling"))
    return sampling.get("sampler"), sampling.get("steps")


def generator_sampler(generator: ECGGenerator, sampler: str | None = None, steps: int | None = None, eta: float = 0.0):
    """The sampler ``sample`` runs for this generator: ``sampler`` (None: the checkpoint's default, with its
    steps unless ``steps`` is given) on the generator's parameterisation (eps, v or rectified flow)."""
    param = generator.parameterization or Parameterization("eps", generator.schedule)
    if sampler is None:
        sampler, default_steps = default_sampler(generator)
        steps = default_steps if steps is None and sampler is not None else steps
    return make_parameterized_sampler(param, sampler, steps=steps, eta=eta)


def guided_eps_fn(model: SSSDECG, conditions: dict[str, torch.Tensor], guidance: float):
    """The network output a sampler sees (eps, v or flow velocity); with guidance w: out_u + w (out_c - out_u)."""
    if guidance == 1.0:
        return lambda x_t, t: model(x_t, t, conditions).float()
    batch = next(iter(conditions.values())).shape[0]
    keep = {name: torch.zeros(batch, dtype=torch.bool, device=x.device) for name, x in conditions.items()}
    drop = {name: torch.ones(batch, dtype=torch.bool, device=x.device) for name, x in conditions.items()}
    doubled = {name: torch.cat([x, x]) for name, x in conditions.items()}
    both = {name: torch.cat([keep[name], drop[name]]) for name in conditions}

    def eps_fn(x_t, t):
        eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), doubled, both).float()
        eps_cond, eps_uncond = eps.chunk(2)
        return eps_uncond + guidance * (eps_cond - eps_uncond)

    return eps_fn


def graphed_eps_fn(eps_fn, shape: tuple[int, ...], device: torch.device, warmup: int = 2):
    """``eps_fn`` captured as a CUDA graph for states of ``shape``: each call copies x_t and t into the
    graph's inputs, replays it and returns a copy of its output. ``warmup`` ordinary calls on a side stream
    first (on zeros: the model's caches are filled there, not in the graph)."""
    static_x = torch.zeros(shape, device=device)
    static_t = torch.zeros(shape[0], dtype=torch.long, device=device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            eps_fn(static_x, static_t)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_eps = eps_fn(static_x, static_t)

    def replay(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        static_x.copy_(x_t)
        static_t.copy_(t)
        graph.replay()
        return static_eps.clone()

    return replay


def _job_indices(indices, n: int) -> np.ndarray:
    if indices is None:
        return np.arange(n, dtype=np.int64)
    values = np.asarray(indices)
    if values.shape != (n,) or not (np.issubdtype(values.dtype, np.integer) or values.size == 0):
        raise ValueError(
            f"indices must be {n} whole numbers, one per conditions row; got {values.dtype} {values.shape}"
        )
    values = values.astype(np.int64)  # uint64 beyond 2^63 wraps to negative and is refused below
    if (values < 0).any() or len(np.unique(values)) != n:
        raise ValueError("indices must be distinct non-negative whole numbers (one noise stream per ECG)")
    return values


@torch.no_grad()
def sample(
    generator: ECGGenerator,
    conditions: pd.DataFrame,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    eta: float = 0.0,
    guidance: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    indices: Sequence[int] | np.ndarray | None = None,
    bf16: bool = False,
    compile: bool = False,
    cuda_graph: bool = False,
    progress: bool = True,
) -> SampledECGs:
    """Generate one ECG per row of ``conditions`` (SCP code columns 0/1 plus demographic columns).

    ``sampler``: ddpm, ddim or dpm++2m for diffusion models, euler or heun for rectified-flow models; None:
    the checkpoint's default (``default_sampler``), with its steps unless ``steps`` is given.
    ``seed`` (a whole number in [0, 2^64)) and ``indices`` (each row's index in the job: distinct whole
    numbers; None: 0, 1, ..., n - 1) key the noise: every random draw of ECG ``i`` (its start and, for ddpm
    and ddim with ``eta`` > 0, the noise of each step) is a function of ``(seed, indices[i])`` alone, the
    same on every device. So ``batch_size`` does not change the ECGs, and ``conditions.iloc[[i]]`` with
    ``indices=[i]`` gives ECG ``i`` of the whole job, up to float32 round-off of the network's batched
    arithmetic (about 1e-6 mV). With guidance the conditional and unconditional passes see the same state,
    so they share the noise.
    ``compile``: ``torch.compile`` the model evaluation; ``cuda_graph`` (CUDA only, else ignored): replay it
    as a CUDA graph. Both give the eager result up to float round-off."""
    if guidance != 1.0 and not generator.supports_guidance:
        raise ValueError(
            f"{generator.source} was trained without condition dropout, so guidance must be 1.0 (got {guidance})"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(conditions)
    indices = _job_indices(indices, n)
    seed = check_seed(seed)
    encoded = generator.encoder.encode(conditions)
    device = generator.device
    param = generator.parameterization or Parameterization("eps", generator.schedule)
    solver = generator_sampler(generator, sampler, steps, eta)
    shape_tail = (generator.model.config.in_leads, generator.length)
    outputs = []
    batches = range(0, n, batch_size)
    use_bf16 = bf16 and device.type == "cuda"
    use_graph = cuda_graph and device.type == "cuda"
    model = torch.compile(generator.model) if compile else generator.model
    # Autocast's cast cache must be off while a graph is captured.
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=use_bf16, cache_enabled=not use_graph)
    with generator.model.cached_kernels(), autocast:
        for start in tqdm(batches, desc="batches", disable=not progress or len(batches) < 2):
            stop = min(start + batch_size, n)
            cond = {
                k: torch.tensor(v[start:stop], device=device) for k, v in encoded.items()
            }  # copies: v may be read-only
            noise = IndexedNoise(seed, indices[start:stop], device)
            guided = guided_eps_fn(model, cond, guidance)
            eps_fn = lambda x_t, t, guided=guided: guided(x_t, param.model_time(t))  # noqa: E731
            if use_graph:
                eps_fn = graphed_eps_fn(eps_fn, (stop - start, *shape_tail), device)
            x8 = solver.sample(
                eps_fn, (stop - start, *shape_tail), noise=noise, device=device, progress=progress and len(batches) < 2
            )
            if generator.lead_scale is not None:  # back to millivolts
                x8 = x8 * torch.from_numpy(generator.lead_scale).to(x8.device)[:, None]
            outputs.append(to_twelve_leads(x8.float()).cpu().numpy())
    signals = np.concatenate(outputs) if outputs else np.zeros((0, 12, generator.length), np.float32)
    return SampledECGs(signals.astype(np.float32), conditions.reset_index(drop=True), generator.fs)
