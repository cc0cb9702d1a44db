"""Checks of a state dict before :meth:`snsm.SNSM.load_state_dict` loads it: the settings that
decide the state's structure, and each parameter's state keys and shapes."""

from __future__ import annotations

import torch
from torch import Tensor

# Group settings that decide the rules and the state's shapes: a state saved under other
# values cannot be loaded into this optimizer.
STRUCTURAL_KEYS = ("momentum", "accumulator", "subset_size", "rank", "projector", "use_snsm",
                   "state_precision", "orthogonalize", "normalize", "complement")


def check_same_structure(index: int, saved: dict, group: dict) -> None:
    """ValueError naming the first structural key whose saved value differs from the group's;
    ``bf16_update`` counts where the group has bf16 parameters and one side is ``"kahan"``
    (the compensation buffers exist on that side only)."""
    for key in STRUCTURAL_KEYS:
        if key in saved and saved[key] != group[key]:
            raise ValueError(
                f"cannot load the optimizer state: param group {index} was saved with "
                f"{key}={saved[key]!r}, this optimizer has {key}={group[key]!r}")
    kahan = [g.get("bf16_update") == "kahan" for g in (saved, group)]
    if kahan[0] != kahan[1] and any(p.dtype == torch.bfloat16 for p in group["params"]):
        raise ValueError(
            f"cannot load the optimizer state: param group {index} was saved with "
            f"bf16_update={saved.get('bf16_update')!r}, this optimizer has "
            f"bf16_update={group['bf16_update']!r} (only 'kahan' keeps a compensation per "
            f"bf16 parameter)")


def check_state_shapes(pid: int, state: dict, layout: dict) -> None:
    """ValueError unless the saved state of parameter ``pid`` has the layout's keys and shapes."""
    if set(state) != set(layout):
        raise ValueError(f"cannot load the optimizer state: parameter {pid} has state keys "
                         f"{sorted(state)}, this optimizer allocates {sorted(layout)}")
    for key, value in state.items():
        if isinstance(value, Tensor) and tuple(value.shape) != tuple(layout[key][0]):
            raise ValueError(f"cannot load the optimizer state: parameter {pid} has {key} of "
                             f"shape {tuple(value.shape)}, this optimizer's is "
                             f"{tuple(layout[key][0])}")
