"""State dicts of sharded parameters (FSDP2; :mod:`snsm.optim.sharding`).

The sharded keys are DTensors (``Shard(0)`` or ``Shard(1)`` on the parameter's mesh dim), so
``torch.distributed.checkpoint`` writes each piece once and reshards on load (2 ranks -> 1
process); replicated keys are plain tensors, equal on every rank.
"""

from __future__ import annotations

import torch

from snsm.optim.plan import GroupHParams
from snsm.optim.sharding import ShardSpec, is_dtensor


def wrap_state_dict(optimizer: torch.optim.Optimizer, state_dict: dict) -> dict:
    """``state_dict`` with each sharded parameter's sharded state keys as DTensors."""
    ids = (pid for group in state_dict["param_groups"] for pid in group["params"])
    for group in optimizer.param_groups:
        hp = None
        for param in group["params"]:
            pid = next(ids)
            shard = ShardSpec.of(param)
            if shard is None or pid not in state_dict["state"]:
                continue
            hp = hp or GroupHParams.from_group(group)
            splits = shard.state_splits(shard.plan(hp))
            state = state_dict["state"][pid]
            state_dict["state"][pid] = {
                k: shard.to_dtensor(v, splits[k]) if k in splits else v for k, v in state.items()}
    return state_dict


def unwrap_state_dict(state_dict: dict) -> dict:
    """``state_dict`` with every DTensor replaced by its local shard."""
    return {**state_dict, "state": {
        pid: {k: v.to_local() if is_dtensor(v) else v for k, v in state.items()}
        for pid, state in state_dict["state"].items()}}
