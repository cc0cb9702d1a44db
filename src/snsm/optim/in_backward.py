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
* **Distributed:** under DDP the hooks would fire before the all-reduce, under
  FSDP2 before the reduce-scatter (and FSDP2 has no public per-shard hook after
  it): both are refused with a ValueError.
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
from snsm.util.checks import check_int


class InBackwardSteps:
    """The hooks of :func:`step_in_backward`; :meth:`remove` detaches them."""

    def __init__(self, optimizer: SNSM, accumulation_steps: int, max_norm: float | None):
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self.max_norm = max_norm
        self.backward_passes: dict[int, int] = {}  # per parameter, since the hooks were attached
        self.handles = [param.register_post_accumulate_grad_hook(self._hook)
                        for group in optimizer.param_groups for param in group["params"]
                        if param.requires_grad]
        optimizer.__dict__["_in_backward"] = self

    @torch.no_grad()
    def _hook(self, param: Tensor) -> None:
        count = self.backward_passes[id(param)] = self.backward_passes.get(id(param), 0) + 1
        if count % self.accumulation_steps:
            return
        if self.max_norm is not None:
            norm = torch.linalg.vector_norm(param.grad, dtype=torch.float32)
            param.grad.mul_((self.max_norm / (norm + 1e-6)).clamp(max=1.0).to(param.grad.dtype))
        self.optimizer.step_parameter(param)
        param.grad = None

    def remove(self) -> None:
        """Detach the hooks: ``optimizer.step()`` steps again."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.optimizer.__dict__.pop("_in_backward", None)


def step_in_backward(model: nn.Module, optimizer: SNSM, accumulation_steps: int = 1,
                     max_norm: float | None = None) -> InBackwardSteps:
    """Update every parameter of ``optimizer`` inside the backward pass (see the module doc).

    Args:
        model: the module trained (checked for DDP and FSDP2, which are refused).
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
    if isinstance(model, nn.parallel.DistributedDataParallel):
        raise ValueError("step_in_backward cannot run under DDP: the hooks fire before the "
                         "gradients are all-reduced; use optimizer.step()")
    if any(is_dtensor(p) for p in model.parameters()):
        raise ValueError("step_in_backward cannot run under FSDP2: the hooks fire before the "
                         "reduce-scatter, and no public hook runs after it; use "
                         "optimizer.step()")
    if "_in_backward" in optimizer.__dict__:
        raise ValueError("step_in_backward is already attached to this optimizer")
    return InBackwardSteps(optimizer, accumulation_steps, max_norm)
