r"""Optimizer steps inside the backward pass: each parameter is updated as soon as its
gradient is complete, and the gradient is freed at once.

The gradients of a model then never all exist at the same time: at most the
gradients still being accumulated, plus one parameter's, are live, instead of a
full gradient buffer the size of the weights. The update of each parameter is exactly
the one :meth:`SNSM.step` would make (the same single-tensor math, the same step counter,
projector refresh and seed), so without clipping the parameters and the state equal the
regular step's bit for bit.

* **Gradient accumulation** (``accumulation_steps=k``): backward passes are counted
  (one per ``backward()`` that reaches a parameter of the optimizer), in windows of k.
  The first k - 1 passes of a window accumulate into ``.grad`` as usual; in the k-th, each
  parameter is updated and freed as soon as its gradient is complete, and at the end of
  that pass every parameter still holding a gradient (it got none in the k-th pass: a
  conditional branch, an unused head, an MoE expert) is updated from the sum it received.
  So each parameter is updated when and as :meth:`SNSM.step` would, at the window's end
  (a parameter with no gradient in the whole window is not updated). This saves the
  gradient buffer only for k = 1; with k > 1 the accumulated gradients must live between
  micro-batches, and only the update's own temporaries are saved.
* **Unfreezing:** a parameter of the optimizer that requires no gradient at attach time
  is hooked as soon as it does (checked after each forward pass of ``model`` and after
  each backward pass), so progressive unfreezing trains it as ``step()`` would.
* **Clipping:** global-norm clipping needs every gradient before any update, which
  a step inside the backward pass cannot have. ``max_norm`` clips each parameter's
  gradient alone: g <- g min(1, max_norm / ||g||).
* **DDP:** the update runs in DDP's communication hook, on each bucket's
  parameters as soon as its all-reduce completes (the averaged gradients, so the
  result equals the regular DDP step). DDP keeps its gradient buckets, so this
  overlaps the updates with the backward pass but saves no memory. Accumulate
  with ``ddp.no_sync()`` (``accumulation_steps`` must be 1).
* **FSDP2** is refused with a ValueError: the hooks fire before the
  reduce-scatter, and FSDP2 has no public hook that runs on the reduced shards.
* A non-finite gradient raises :class:`NonFiniteGradientError` from the backward
  pass that ends its window (a non-finite micro-batch is found there, in the sum); the
  parameters updated earlier in that pass keep their update (``skip_nonfinite`` applies
  to whole steps only). The window is abandoned: every gradient of the optimizer is
  dropped and the next backward pass starts a new window, so all parameters stay in phase.
* ``optimizer.step()`` does nothing while the hooks are attached, so a training
  loop and an lr scheduler may keep calling it; schedulers work as usual, since
  each update reads its group's lr when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from snsm.optim.optimizer import SNSM
from snsm.optim.sharding import is_dtensor
from snsm.checks import check_int


def clip_per_parameter_(grad: Tensor, max_norm: float, norm: Tensor | None = None) -> Tensor:
    """g <- g min(1, max_norm / (||g|| + 1e-6)), one gradient alone (``norm``: ||g||, if known)."""
    if norm is None:
        norm = torch.linalg.vector_norm(grad, dtype=torch.float32)
    return grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0).to(grad.dtype))


class InBackwardSteps:
    """The hooks of :func:`step_in_backward`; :meth:`remove` detaches them.

    ``passes`` counts the backward passes that reached the model's outputs or a parameter
    of the optimizer; pass number ``passes + 1`` ends an accumulation window when it is a
    multiple of k, and only then are parameters updated (module doc)."""

    def __init__(self, model: nn.Module, optimizer: SNSM, accumulation_steps: int,
                 max_norm: float | None):
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self.max_norm = max_norm
        self.passes = 0  # backward passes completed since the hooks were attached
        self._in_pass = False  # a hook of the running backward pass queued its end callback
        self._squared_norms: list[Tensor] = []
        self._hooked: set[int] = set()
        self.handles = []
        self.ddp = isinstance(model, nn.parallel.DistributedDataParallel)
        if self.ddp:
            model.register_comm_hook(None, self._bucket_hook)  # DDP allows no removal
        else:
            self._hook_new_parameters()
            self.handles.append(model.register_forward_hook(self._after_forward))
        optimizer.__dict__["_in_backward"] = self

    def _parameters(self) -> list[Tensor]:
        return [param for group in self.optimizer.param_groups for param in group["params"]]

    def _hook_new_parameters(self) -> None:
        """Hook every parameter that requires a gradient and has no hook yet: those of the
        optimizer at attach time, and any unfrozen since (torch hooks only those)."""
        for param in self._parameters():
            if param.requires_grad and id(param) not in self._hooked:
                self.handles.append(param.register_post_accumulate_grad_hook(self._hook))
                self._hooked.add(id(param))

    def _after_forward(self, module: nn.Module, args, output) -> None:
        """Hook the parameters unfrozen since the last pass, and the outputs: the backward
        pass reaches them first, in its outermost graph task, so the end-of-pass callback
        queued there runs after the whole pass (a reentrant activation checkpoint runs its
        part as a nested backward pass, whose callbacks run when that part ends)."""
        if self._in_pass and torch._C._current_graph_task_id() == -1:
            self._abandon_window()  # the last backward pass stopped on an error not ours
        self._hook_new_parameters()
        for tensor in _tensors(output):
            if tensor.requires_grad:
                tensor.register_hook(self._start_pass)

    def _start_pass(self, grad: Tensor | None = None) -> None:
        """Queue :meth:`_end_of_pass` once per backward pass (from the first hook to fire)."""
        if not self._in_pass and self.handles:  # no handles: removed
            self._in_pass = True
            torch.autograd.Variable._execution_engine.queue_callback(self._end_of_pass)

    def _update(self, param: Tensor, grad: Tensor) -> None:
        norm = torch.linalg.vector_norm(grad, dtype=torch.float32)
        self._squared_norms.append(norm.square())
        if self.max_norm is not None:
            clip_per_parameter_(grad, self.max_norm, norm)
        self.optimizer.step_parameter(param, grad)

    def _update_and_free(self, param: Tensor) -> None:
        """Update ``param`` from its accumulated ``.grad`` and free it. Any error (a
        non-finite gradient) abandons the window: every gradient of the optimizer is
        dropped and the next backward pass starts a new window, so all parameters stay in
        phase; the parameters updated earlier in this pass keep their update."""
        try:
            self._update(param, param.grad)
        except BaseException:
            self._abandon_window()
            raise
        param.grad = None

    def _abandon_window(self) -> None:
        """Drop every gradient of the optimizer; the next backward pass starts a window. A
        pass that stopped on an error never runs its end callback: it is counted here."""
        if self._in_pass:
            self._in_pass = False
            k = self.accumulation_steps
            self.passes = (self.passes // k + 1) * k
        for param in self._parameters():
            param.grad = None

    def _ends_window(self) -> bool:
        """Whether the running backward pass is the last of its accumulation window."""
        return (self.passes + 1) % self.accumulation_steps == 0

    def take_grad_norm(self) -> float:
        """The norm of every gradient updated since the last call (before clipping), as
        ``clip_grad_norm_`` would report it; resets the sum."""
        squares, self._squared_norms = self._squared_norms, []
        return float(torch.stack(squares).sum().sqrt()) if squares else 0.0

    @torch.no_grad()
    def _hook(self, param: Tensor) -> None:
        self._start_pass()  # a loss computed outside model's forward: no output hook fired
        if self._ends_window():
            self._update_and_free(param)

    @torch.no_grad()
    def _end_of_pass(self) -> None:
        """After every backward pass: count it, hook the parameters unfrozen since the
        forward pass and, at the end of a window, update the parameters that hold a
        gradient but got none in this pass (their hook did not fire), as step() would."""
        self._in_pass = False
        self.passes += 1
        self._hook_new_parameters()
        if self.passes % self.accumulation_steps == 0:
            for param in self._parameters():
                if param.grad is not None:
                    self._update_and_free(param)

    def _bucket_hook(self, process_group, bucket):
        """DDP's all-reduce of one bucket, then the update of its parameters."""
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        def update(future):
            with torch.no_grad():
                for param, grad in zip(bucket.parameters(), bucket.gradients()):
                    # a copy: BLAS rounds by the operand's alignment, and a view into the
                    # bucket is aligned otherwise than the .grad DDP copies it to
                    self._update(param, grad.clone())
            return future.value()[0] if isinstance(future.value(), list) else future.value()

        return allreduce_hook(process_group, bucket).then(update)

    def remove(self) -> None:
        """Detach the hooks: ``optimizer.step()`` steps again (not under DDP, whose
        communication hook cannot be removed)."""
        if self.ddp:
            raise RuntimeError("DDP's communication hook cannot be removed")
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self._hooked = set()
        self.optimizer.__dict__.pop("_in_backward", None)


def _tensors(output) -> list[Tensor]:
    """The tensors of a forward's output: a tensor, or tensors in tuples, lists and mappings
    (as HF's ModelOutput), one level deep."""
    if isinstance(output, Tensor):
        return [output]
    values = output.values() if isinstance(output, Mapping) else output
    if isinstance(output, (Mapping, tuple, list)):
        return [value for value in values if isinstance(value, Tensor)]
    return []


def step_in_backward(model: nn.Module, optimizer: SNSM, accumulation_steps: int = 1,
                     max_norm: float | None = None) -> InBackwardSteps:
    """Update every parameter of ``optimizer`` inside the backward pass (see the module doc).

    Args:
        model: the module trained: a plain module, or a DDP one (FSDP2 is refused).
        optimizer: an snsm optimizer over ``model``'s parameters.
        accumulation_steps: backward passes per update (the update runs in the k-th).
        max_norm: per-parameter gradient clipping (None: none).

    Returns the hooks' handle; ``handle.remove()`` goes back to ``optimizer.step()``.
    """
    if not isinstance(optimizer, SNSM):
        raise ValueError(f"step_in_backward needs an snsm optimizer, got "
                         f"{type(optimizer).__name__}")
    check_int("accumulation_steps", accumulation_steps, 1)
    if max_norm is not None and not (isinstance(max_norm, (int, float)) and
                                     math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm must be a finite number > 0 or None, got {max_norm!r}")
    if isinstance(model, nn.parallel.DistributedDataParallel) and accumulation_steps != 1:
        raise ValueError(f"under DDP, accumulate with ddp.no_sync(): accumulation_steps must "
                         f"be 1, got {accumulation_steps}")
    if any(is_dtensor(p) for p in model.parameters()):
        raise ValueError("step_in_backward cannot run under FSDP2: the hooks fire before the "
                         "reduce-scatter, and no public hook runs after it; use "
                         "optimizer.step()")
    if "_in_backward" in optimizer.__dict__:
        raise ValueError("step_in_backward is already attached to this optimizer")
    return InBackwardSteps(model, optimizer, accumulation_steps, max_norm)
