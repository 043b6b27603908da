"""One optimisation step, ``TrainStep``, and the pieces it is made of (EMA, optimiser, activation checkpointing).

A step never makes the host wait for the device: the loss parts go into a device-side log that is read on
logging and checkpoint steps only, where a loss that was not finite is reported with the step it happened
at; the EMA weight is a device tensor; batches reach the GPU through pinned memory. So the host can queue
the next steps while the GPU works, ``train.compile`` can compile the step's forward and loss
(``torch.compile``, inductor, CPU or CUDA) and ``train.cuda_graph`` can replay its forward and backward as
one CUDA graph. ``train.checkpoint_activations`` recomputes each block's activations in backward ("auto":
where the activations would take more than half the GPU's memory; never on the CPU).
"""

from __future__ import annotations

import math

import torch

from midtecg.diffusion import NoiseSchedule, Parameterization
from midtecg.losses import ObjectiveConfig, training_loss
from midtecg.models.config import SSSDConfig

__all__ = [
    "TrainStep",
    "ema_weights",
    "update_ema",
    "make_optimizer",
    "lr_factor",
    "activation_checkpointing",
    "to_device",
]


def ema_weights(decay: float, steps: int, device: torch.device) -> torch.Tensor:
    """The EMA's interpolation weight at steps 0 .. n-1 as a float32 device table: ``1 - min(decay,
    (1 + s) / (10 + s))`` (a warm-up: early weights are not averaged in for long), computed in float64 on
    the host. n covers the warm-up (the weight is ``1 - decay`` from its end on) or the run, whichever is
    shorter; index it with ``min(step, n - 1)``, a view, so a step reads its weight without a copy."""
    warm_up = steps  # becomes the first step at which (1 + s) / (10 + s) reaches decay, in float64 as below
    if decay < 1:
        warm_up = max(0, math.floor((10 * decay - 1) / (1 - decay)) - 2)
        while warm_up < steps and (1 + warm_up) / (10 + warm_up) < decay:
            warm_up += 1
    n = max(1, min(steps, warm_up) + 1)
    values = [1.0 - min(decay, (1 + s) / (10 + s)) for s in range(n)]
    return torch.tensor(values, dtype=torch.float64).to(device=device, dtype=torch.float32)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, weight: torch.Tensor) -> None:
    """ema <- ema + weight (model - ema) for every parameter; ``weight`` is a 0-dim tensor on the
    parameters' device (see ``ema_weights``). Three multi-tensor ops, whatever the number of parameters."""
    ema_params = list(ema.parameters())
    delta = torch._foreach_sub(list(model.parameters()), ema_params)
    torch._foreach_mul_(delta, weight)
    torch._foreach_add_(ema_params, delta)


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam as the reference trains it, fused: one multi-tensor kernel for all parameters (CPU and CUDA)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def lr_factor(step: int, warmup_steps: int, decay_start: int, steps: int) -> float:
    """The learning rate's multiplier at (0-based) ``step``: a linear warm-up over ``warmup_steps``, then 1;
    from ``decay_start`` on (when above 0) a linear fall that would reach 0 at ``steps`` (a cool-down: the
    last steps average out the noise of a constant rate)."""
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if 0 < decay_start <= step:
        factor *= max(0.0, (steps - step) / (steps - decay_start))
    return factor


def activation_checkpointing(
    setting: str | bool, device: torch.device, model_config: SSSDConfig, batch_size: int
) -> bool:
    """``train.checkpoint_activations``: True, False, or "auto": on where the activations kept for backward
    would take more than half the GPU's memory (about 25 x batch x channels x length float32 numbers per
    block, measured on this model); never on the CPU."""
    if setting != "auto":
        return bool(setting)
    if device.type != "cuda":
        return False
    need = 25 * 4 * batch_size * model_config.channels * model_config.length * model_config.blocks
    return need > torch.cuda.get_device_properties(device).total_memory // 2


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without making the host wait: through pinned memory on CUDA."""
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


class TrainStep:
    """One optimisation step: noising, forward, loss, backward, clipping, Adam, the learning-rate schedule
    and the EMA, all queued on the device; nothing in it reads a device value on the host. ``param`` says
    what the network predicts (eps, v or rectified-flow velocity; a ``NoiseSchedule`` means eps on it);
    ``signal_scale`` is the per-lead data scaling the mel term undoes (None: the data are in millivolts).

    ``trainer(step, x0, conditions, t, noise, drop)`` runs it (or ``forward`` / ``backward`` / ``update``,
    one phase at a time). Each step's loss parts are written to a device-side log; ``read_log()`` reads it
    (one synchronisation, on logging steps), raises ``FloatingPointError`` naming the first step whose loss
    was not finite, and returns the means of the parts since its last call; ``check_log()`` only checks.

    ``compile``: ``torch.compile`` the forward and loss (inductor). ``cuda_graph`` (CUDA, one process):
    after ``WARMUP_STEPS`` ordinary steps on a side stream, the forward and backward are captured as one
    CUDA graph and replayed for every later step (the optimiser, the schedule and the EMA stay eager; they
    are a few multi-tensor kernels); the batch is copied into the graph's inputs.
    """

    WARMUP_STEPS = 3

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler,
        param: Parameterization | NoiseSchedule,
        objective: ObjectiveConfig,
        *,
        ema: torch.nn.Module | None = None,
        ema_decay: float = 0.0,
        steps: int = 1_000_000,
        grad_clip: float = 0.0,
        step_model: torch.nn.Module | None = None,
        bf16: bool = False,
        log_capacity: int = 1000,
        compile: bool = False,
        cuda_graph: bool = False,
        signal_scale: torch.Tensor | None = None,
    ):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        # a bare schedule means epsilon prediction on it, the reference's parameterisation
        self.param = param if isinstance(param, Parameterization) else Parameterization("eps", param)
        self.objective, self.ema, self.grad_clip = objective, ema, grad_clip
        self.step_model = model if step_model is None else step_model
        self.device = next(model.parameters()).device
        self.signal_scale = None if signal_scale is None else signal_scale.to(self.device)
        self.cuda_graph = bool(cuda_graph) and self.device.type == "cuda"
        if self.cuda_graph and isinstance(self.step_model, torch.nn.parallel.DistributedDataParallel):
            raise ValueError("train.cuda_graph captures one process's step; it does not work with several processes")
        # Autocast's cast cache must be off while a graph is captured (its casts would be captured once).
        self._autocast = lambda: torch.autocast(
            self.device.type, torch.bfloat16, enabled=bf16, cache_enabled=not self.cuda_graph
        )
        self._ema_weights = ema_weights(ema_decay, steps, self.device) if ema is not None else None
        self._forward_loss = torch.compile(self._forward_and_loss) if compile else self._forward_and_loss
        self._capacity = int(log_capacity)
        self._log: torch.Tensor | None = None  # (capacity, parts) on the device
        self._slot = torch.zeros((), dtype=torch.long, device=self.device)  # next row of the log
        self._names: list[str] = []
        self._first_step, self._rows = 0, 0  # host bookkeeping of the log window
        self._graph = self._static = self._stream = None
        self._eager_steps = 0

    # ---- the phases ----------------------------------------------------------------------------------
    def _forward_and_loss(self, x0, conditions, t, noise, drop):
        x_t = self.param.add_noise(x0, noise, t)
        with self._autocast():
            out = self.step_model(x_t, self.param.model_time(t), conditions, drop)
        return training_loss(out.float(), noise, x_t, x0, t, self.param, self.objective, self.signal_scale)

    def _forward_logged(self, x0, conditions, t, noise, drop) -> torch.Tensor:
        loss, parts = self._forward_loss(x0, conditions, t, noise, drop)
        if self._log is None:
            self._names = list(parts)
            self._log = torch.zeros(self._capacity, len(parts), device=self.device)
        self._log.index_copy_(0, self._slot, torch.stack([parts[k] for k in self._names])[None])
        self._slot.add_(1)
        return loss

    def _count(self, step: int) -> None:
        if self._rows == 0:
            self._first_step = step
        if self._rows == self._capacity:
            raise RuntimeError(f"TrainStep's log holds {self._capacity} steps: call read_log() at least that often")
        self._rows += 1

    def forward(self, step: int, x0, conditions, t, noise, drop) -> torch.Tensor:
        """Noising, model and loss; the loss parts go to the log. Returns the loss."""
        self._count(step)
        return self._forward_logged(x0, conditions, t, noise, drop)

    def backward(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def update(self, step: int) -> None:
        """Clipping, Adam, the learning-rate schedule, the EMA."""
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            update_ema(self.ema, self.model, self._ema_weights[min(step, len(self._ema_weights) - 1)])

    def __call__(self, step: int, x0, conditions, t, noise, drop) -> None:
        if self.cuda_graph and self._graph is None and self._eager_steps < self.WARMUP_STEPS:
            stream = self._stream = self._stream or torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):  # capture needs its warm-up off the default stream
                self._eager(step, x0, conditions, t, noise, drop)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            self._eager_steps += 1
        elif self.cuda_graph:
            self._count(step)
            self._replay(x0, conditions, t, noise, drop)
            self.update(step)
        else:
            self._eager(step, x0, conditions, t, noise, drop)

    def _eager(self, step: int, *batch) -> None:
        self.backward(self.forward(step, *batch))
        self.update(step)

    def _replay(self, *batch) -> None:
        if self._graph is None:  # capture: records the kernels without running them
            self._static = _clone_tree(batch)
            self.optimizer.zero_grad(set_to_none=True)  # backward in the graph allocates static gradients
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._forward_logged(*self._static).backward()
        _copy_tree(self._static, batch)
        self._graph.replay()

    # ---- the log -------------------------------------------------------------------------------------
    def _read(self) -> list[list[float]]:
        rows = self._log[: self._rows].tolist() if self._rows else []
        for i, row in enumerate(rows):
            loss = row[self._names.index("loss")]
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss} at step {self._first_step + i}; lower train.lr or enable train.grad_clip"
                )
        return rows

    def check_log(self) -> None:
        """Raise FloatingPointError if a loss since the last ``read_log()`` was not finite (synchronises)."""
        self._read()

    def read_log(self) -> dict[str, float]:
        """Mean of each loss part over the steps since the last call (synchronises); raises
        FloatingPointError at a loss that was not finite."""
        rows = self._read()
        means = {name: sum(r[i] for r in rows) / len(rows) for i, name in enumerate(self._names)} if rows else {}
        self._slot.zero_()
        self._rows = 0
        return means


def _clone_tree(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _clone_tree(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_clone_tree(v) for v in value)
    return value


def _copy_tree(target, source) -> None:
    if isinstance(target, torch.Tensor):
        target.copy_(source, non_blocking=True)
    elif isinstance(target, dict):
        for key in target:
            _copy_tree(target[key], source[key])
    elif isinstance(target, (tuple, list)):
        for t, s in zip(target, source):
            _copy_tree(t, s)
