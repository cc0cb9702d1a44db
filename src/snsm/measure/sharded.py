"""Per-GPU optimizer-state memory under FSDP2: ``snsm memory --world-size 1 8 64``.

Every parameter is sharded on dim 0 over N ranks as ``fully_shard`` does
(``torch.chunk`` pieces, rank 0 holding the most); the figure is rank 0's. The
registry's optimizers are estimated with the rules of :mod:`snsm.optim.sharding`
(the same code that allocates their state when they step on DTensors): every
state tensor split by the parameter's rows or columns shrinks with N; what is
replicated (step counts, projector indices, the (1, n) accumulators of wide
matrices) does not.

GaLore (Zhao et al., 2024) has no FSDP support; its row shows what its state
would take under the same rules, as :mod:`snsm.measure.peers` counts it on one
device: Adam's two moments of the rank-r projected gradient and the basis on
the smaller side for every block matrix, AdamW for the embedding, the lm_head
and the norms. Its moments and basis are split as our ``svd`` projector's
momentum and basis are.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from snsm.measure.memory import estimate_state_bytes
from snsm.optim.sharding import ShardProjector, ShardSpec
from snsm.projectors import SVDProjector
from snsm.optim.registry import get_optimizer_class, list_optimizers

GIB = 2**30
GALORE = "galore"


def _block_matrix_ids(model: nn.Module) -> set[int]:
    """GaLore's matrices: every ``nn.Linear`` weight except the lm_head (as peer_memory)."""
    lm_head = getattr(model, "lm_head", None)
    skip = {id(lm_head.weight)} if lm_head is not None else set()
    return {id(m.weight) for m in model.modules()
            if isinstance(m, nn.Linear) and id(m.weight) not in skip}


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def galore_state_bytes(model: nn.Module, dtype: torch.dtype, rank: int, world_size: int = 1,
                       shard_rank: int = 0, include_bases: bool = True) -> int:
    """Bytes of GaLore's state on rank ``shard_rank`` of ``world_size`` (see the module doc)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    matrices = _block_matrix_ids(model)
    total = 0
    for param in model.parameters():
        shard = ShardSpec.for_rank(tuple(param.shape), shard_rank, world_size)
        if id(param) not in matrices:
            total += 2 * _elements(shard.local_shape)
            continue
        projector = ShardProjector(SVDProjector(), shard)
        local = (shard.rows, _elements(param.shape[1:]))
        total += 2 * _elements(projector.low_shape(local, rank))
        if include_bases:
            (basis_shape, _), = projector.state_layout(local, rank, dtype).values()
            total += _elements(basis_shape)
    return total * itemsize


def scale_rows(skeleton: nn.Module, dtype: torch.dtype, rank: int, include_bases: bool,
               world_sizes: list[int]) -> list[dict]:
    """Per-GPU GiB of every registry optimizer and GaLore, per world size (rank 0's share)."""
    for world_size in world_sizes:
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world sizes must be positive ints, got {world_size!r}")
    rows = []
    for name in [*list_optimizers(), GALORE]:
        row = {"optimizer": name}
        for world_size in world_sizes:
            if name == GALORE:
                total = galore_state_bytes(skeleton, dtype, rank, world_size, 0, include_bases)
            else:
                takes_rank = "rank" in inspect.signature(get_optimizer_class(name)).parameters
                hparams = {"rank": rank} if takes_rank else {}
                total = estimate_state_bytes(skeleton, name, dtype=dtype,
                                             include_bases=include_bases,
                                             world_size=world_size, **hparams)
            row[f"gib_{world_size}"] = round(total / GIB, 3)
        rows.append(row)
    return rows
