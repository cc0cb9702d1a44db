"""Per-GPU optimizer-state memory under FSDP2: ``snsm memory --world-size 1 8 64``.

Every parameter is sharded on dim 0 over N ranks as ``fully_shard`` does
(``torch.chunk`` pieces, rank 0 holding the most); the figure is rank 0's. The
registry's optimizers are estimated with the rules of :mod:`snsm.optim.sharding`
(the same code that allocates their state when they step on DTensors): every
state tensor split by the parameter's rows or columns shrinks with N; what is
replicated (step counts, projector indices, the (1, n) accumulators of wide
matrices) does not.

GaLore (Zhao et al., 2024) has no FSDP support; its row shows what its state
would take under the same rules, as :mod:`snsm_workbench.measure.peers` counts it on one
device: Adam's two moments of the rank-r projected gradient and the basis on
the smaller side for every block matrix, AdamW for the embedding, the lm_head
and the norms. Its moments and basis are split as our ``svd`` projector's
momentum and basis are.
"""

from __future__ import annotations

import torch
from torch import nn

from snsm.memory import estimate_state_bytes
from snsm_workbench.measure.memory import GIB, rank_hparams
from snsm_workbench.measure.peers import galore_state_bytes
from snsm.optim.registry import list_optimizers

GALORE = "galore"


def per_gpu_rows(skeleton: nn.Module, dtype: torch.dtype, rank: int, include_bases: bool,
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
                total = galore_state_bytes(skeleton, dtype, rank, world_size,
                                           include_bases=include_bases)
            else:
                total = estimate_state_bytes(skeleton, name, dtype=dtype,
                                             include_bases=include_bases,
                                             world_size=world_size, **rank_hparams(name, rank))
            row[f"gib_{world_size}"] = round(total / GIB, 3)
        rows.append(row)
    return rows
