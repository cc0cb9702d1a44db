"""Optimizer-state accounting: the bytes a state holds, measured or estimated from shapes.

* :func:`state_bytes`: the tensors directly in ``optimizer.state`` (any torch optimizer).
* :func:`estimate_state_bytes`: from shapes alone, with the layout that allocates the state
  (:func:`snsm.optim.plan.state_layout`), so estimate and measurement agree exactly; also
  per GPU under FSDP2.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snsm.optim.plan import GroupHParams, state_layout
from snsm.optim.registry import create_optimizer
from snsm.optim.sharding import ShardSpec

PROJECTOR_KEYS = frozenset({"basis", "indices"})


def _tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def state_bytes(optimizer: torch.optim.Optimizer, include_bases: bool = True) -> int:
    """Bytes held by the tensors of ``optimizer.state`` (any torch optimizer).

    ``include_bases=False`` leaves out projector state (bases and indices), as the paper does.
    """
    total = 0
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and (include_bases or key not in PROJECTOR_KEYS):
                total += _tensor_bytes(value)
    return total


def estimate_state_bytes(model: nn.Module, name: str, dtype: torch.dtype | None = None,
                         include_bases: bool = True, world_size: int = 1, shard_index: int = 0,
                         **hparams) -> int:
    """Bytes the state of optimizer ``name`` will hold after one step on every parameter.

    Computed from shapes alone, so ``model`` may live on the ``meta`` device.
    ``dtype`` overrides the parameters' dtype (for example ``torch.bfloat16``).
    With ``world_size`` > 1: the bytes shard ``shard_index`` holds when every parameter is
    sharded on dim 0 over ``world_size`` ranks as FSDP2 does (shard 0 holds the most);
    see :mod:`snsm.optim.sharding` for which state is sharded and which replicated.
    """
    if not 0 <= shard_index < world_size:
        raise ValueError(f"shard_index must be in [0, world_size={world_size}), "
                         f"got {shard_index}")
    optimizer = create_optimizer(model, name, **hparams)
    total = 0
    for group in optimizer.param_groups:
        hp = GroupHParams.from_group(group)
        for param in group["params"]:
            if world_size > 1 and param.dim() > 0:
                shard = ShardSpec.for_shard(tuple(param.shape), shard_index, world_size)
                layout = shard.state_layout(dtype or param.dtype, hp)
            else:
                layout = state_layout(tuple(param.shape), dtype or param.dtype, hp)
            for key, (shape, item_dtype) in layout.items():
                if include_bases or key not in PROJECTOR_KEYS:
                    total += math.prod(shape) * torch.empty((), dtype=item_dtype).element_size()
    return total
