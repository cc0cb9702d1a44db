r"""Optimizer steps inside the backward pass: each parameter is updated as soon as its
gradient is complete, and the gradient is freed at once.

The gradients of a model then never all exist at the same time: at most the
gradients still being accumulated, plus one parameter's, are live, instead of a
full gradient buffer (2.5 GiB for LLaMA-1B in bf16). The update of each parameter
is exactly the one :meth:`SNSM.step` would make (the same single-tensor math, the
same step counter, projector refresh and seed), so without clipping the
parameters and the state equal the regular step's bit for bit.

* **Gradient accumulation** (``accumulation_steps=k``): the first k - 1 backward
  passes accumulate into ``.grad`` as usual; the k-th updates and frees. This saves
  the gradient buffer only for k = 1; with k > 1 the accumulated gradients must live
  between micro-batches, and only the update's own temporaries are saved.
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
  pass; the parameters updated earlier in that pass keep their update
  (``skip_nonfinite`` applies to whole steps only).
* ``optimizer.step()`` does nothing while the hooks are attached, so a training
  loop and an lr scheduler may keep calling it; schedulers work as usual, since
  each update reads its group's lr when it runs.
"""

from __future__ import annotations

import math

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
    """The hooks of :func:`step_in_backward`; :meth:`remove` detaches them."""

    def __init__(self, model: nn.Module, optimizer: SNSM, accumulation_steps: int,
                 max_norm: float | None):
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self.max_norm = max_norm
        self.backward_passes: dict[int, int] = {}  # per parameter, since the hooks were attached
        self._squared_norms: list[Tensor] = []
        self.handles = []
        self.ddp = isinstance(model, nn.parallel.DistributedDataParallel)
        if self.ddp:
            model.register_comm_hook(None, self._bucket_hook)  # DDP allows no removal
        else:
            self.handles = [param.register_post_accumulate_grad_hook(self._hook)
                            for group in optimizer.param_groups for param in group["params"]
                            if param.requires_grad]
        optimizer.__dict__["_in_backward"] = self

    def _update(self, param: Tensor, grad: Tensor) -> None:
        norm = torch.linalg.vector_norm(grad, dtype=torch.float32)
        self._squared_norms.append(norm.square())
        if self.max_norm is not None:
            clip_per_parameter_(grad, self.max_norm, norm)
        self.optimizer.step_parameter(param, grad)

    def take_grad_norm(self) -> float:
        """The norm of every gradient updated since the last call (before clipping), as
        ``clip_grad_norm_`` would report it; resets the sum."""
        squares, self._squared_norms = self._squared_norms, []
        return float(torch.stack(squares).sum().sqrt()) if squares else 0.0

    @torch.no_grad()
    def _hook(self, param: Tensor) -> None:
        count = self.backward_passes[id(param)] = self.backward_passes.get(id(param), 0) + 1
        if count % self.accumulation_steps:
            return
        self._update(param, param.grad)
        param.grad = None

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
        self.optimizer.__dict__.pop("_in_backward", None)


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
