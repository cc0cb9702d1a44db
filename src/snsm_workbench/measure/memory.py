"""Optimizer-state memory tables of the workbench, above the library's :mod:`snsm.memory`.

* :func:`reachable_state_bytes`: every tensor reachable from a state entry through
  lists, tuples, dicts and object attributes, counted once by storage (peers keep
  tensors inside helper objects: GaLore's projector holds its basis).
* :func:`memory_rows`: the table of ``snsm memory`` at the paper's LLaMA shapes.
"""

from __future__ import annotations

import torch

from snsm_workbench.measure.models import LLAMA_SHAPES, llama_skeleton
from snsm_workbench.measure.peers import PEER_FORMULAS, peer_state_bytes
from snsm.memory import estimate_state_bytes
from snsm.optim.registry import get_spec, list_optimizers

GIB = 2**30


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


def reachable_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the distinct tensor storages reachable from ``optimizer.state``."""
    seen: set[int] = set()
    storages: dict[tuple, int] = {}
    for state in optimizer.state.values():
        for tensor in _tensors(state, seen):
            key = (tensor.device.type, tensor.untyped_storage().data_ptr())
            nbytes = tensor.untyped_storage().nbytes()
            storages[key] = max(storages.get(key, 0), nbytes) if key[1] else nbytes
    return sum(storages.values())


def rank_hparams(name: str, rank: int) -> dict:
    """``{"rank": rank}`` for an optimizer that takes a projection rank, else ``{}``."""
    return {"rank": rank} if get_spec(name).takes_rank else {}


def precision_hparams(name: str, state_precision: str) -> dict:
    """``{"state_precision": ...}`` for an optimizer that takes it and a precision other
    than ``"full"``, else ``{}``."""
    if state_precision != "full" and "state_precision" in get_spec(name).options:
        return {"state_precision": state_precision}
    return {}


def rows_named(rows: list[dict]) -> set[str]:
    return {row["optimizer"] for row in rows}


def memory_rows(model: str, dtype: torch.dtype, rank: int, include_bases: bool,
                peers: bool = False, state_precision: str = "full",
                bf16_update: str = "stochastic", aux: str | None = None) -> list[dict]:
    """Optimizer-state GiB per optimizer for a LLaMA shape, against AdamW's full-precision
    state in ``dtype``.

    ``peers`` adds the peers' rows (:mod:`snsm_workbench.measure.peers`, from their documented layouts).
    ``state_precision="8bit"`` gives each optimizer that takes it 8-bit states
    (:mod:`snsm.rules.quantize`); the others, and the AdamW reference, stay full.
    ``bf16_update="kahan"`` adds each of ours a bf16 compensation per weight where ``dtype``
    is bf16 (:mod:`snsm.rules.bf16`); the AdamW reference keeps none.
    ``aux`` gives each optimizer that takes it (the Muon family) that auxiliary rule
    (:mod:`snsm.optim.auxiliary`); None: each one's default.
    """
    skeleton = llama_skeleton(model)
    rows = []
    for name in list_optimizers():
        total = estimate_state_bytes(skeleton, name, dtype=dtype, include_bases=include_bases,
                                     bf16_update=bf16_update, **rank_hparams(name, rank),
                                     **precision_hparams(name, state_precision),
                                     **({"aux": aux} if aux and "aux" in get_spec(name).options
                                        else {}))
        rows.append({"optimizer": name, "bytes": total})
    if peers:
        for name in PEER_FORMULAS:
            total = peer_state_bytes(skeleton, name, dtype=dtype, rank=rank,
                                     heads=LLAMA_SHAPES[model].heads, include_bases=include_bases)
            label = f"{name} (peer)" if name in rows_named(rows) else name  # torch's muon
            rows.append({"optimizer": label, "bytes": total})
    adamw = estimate_state_bytes(skeleton, "adamw", dtype=dtype, include_bases=include_bases)
    for row in rows:
        row["gib"] = round(row["bytes"] / GIB, 2)
        row["pct_of_adamw"] = round(100 * row["bytes"] / adamw, 1)
    return rows
