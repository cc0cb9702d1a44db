"""Optimizer-state bytes of any optimizer, peers included.

``snsm.state_bytes`` counts the tensors directly in ``optimizer.state``; peers also
keep tensors inside helper objects (GaLore's projector holds its orthogonal basis),
so here every tensor reachable from a state entry through lists, tuples, dicts and
object attributes is counted once (by storage), projector bases included.
"""

from __future__ import annotations

import torch


def _tensors(value, seen: set[int], depth: int = 0):
    if depth > 4 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item, seen, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item, seen, depth + 1)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for item in vars(value).values():
            yield from _tensors(item, seen, depth + 1)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the distinct tensor storages reachable from ``optimizer.state``."""
    seen: set[int] = set()
    storages: dict[tuple, int] = {}
    for state in optimizer.state.values():
        for tensor in _tensors(state, seen):
            key = (tensor.device.type, tensor.untyped_storage().data_ptr())
            nbytes = tensor.untyped_storage().nbytes()
            storages[key] = max(storages.get(key, 0), nbytes) if key[1] else nbytes
    return sum(storages.values())
