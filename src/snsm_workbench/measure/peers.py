"""Optimizer-state memory of the peers, from their documented state layouts (no stepping).

For a model with hidden matrices W (m x n) in the blocks, an embedding and an
lm_head (V x h), and vectors (norms), with ``b`` bytes per state element and
projection rank ``r`` (capped at min(m, n)):

* AdamW: ``2 b numel`` for every parameter.
* Adafactor (torch.optim.Adafactor, no first moment): a matrix keeps a row and a
  column factor, ``b (m + n)``; a vector its full second moment, ``b numel``.
* 8-bit AdamW (bitsandbytes): tensors of >= 4096 elements keep two 8-bit states
  plus one fp32 absmax per 256-element block, ``2 numel + 2 * 4 ceil(numel/256)``;
  smaller tensors and (as the adapter sets) embeddings keep two fp32 states.
* Muon: one momentum buffer ``b numel`` per hidden matrix; AdamW for the rest.
* GaLore and Fira: Adam moments of the projected gradient ``2 b r max(m, n)``
  plus the basis ``b r min(m, n)`` per hidden matrix; Adam for the rest.
* APOLLO: the same moments as GaLore; its random basis is regenerated from a seed
  in the authors' code, so no basis is counted.
* Adam-mini: a full first moment ``b numel`` and one second-moment scalar per block
  (per head for q/k, per output row for the other matrices, per token row for the
  embedding and lm_head, one per norm vector).

``include_bases=False`` leaves projector bases out, as the paper's tables do.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snsm.optim.routing import hidden_matrices, split_params
from snsm.optim.sharding import ShardProjector, ShardSpec
from snsm.projectors import SVDProjector

BNB_MIN_8BIT = 4096
BNB_BLOCK = 256
FP32 = 4

PEER_FORMULAS = ("adafactor", "adamw8bit", "muon", "galore", "fira", "apollo", "adam_mini")


def _hidden_and_rest(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(block matrices, everything else: embedding, lm_head, vectors)."""
    return split_params(model, hidden_matrices(model))


def _adamw(params, b: int) -> int:
    return sum(2 * b * p.numel() for p in params)


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def galore_state_bytes(model: nn.Module, dtype: torch.dtype, rank: int, world_size: int = 1,
                       shard_index: int = 0, include_bases: bool = True) -> int:
    """Bytes of GaLore's state on shard ``shard_index`` of ``world_size`` (see the module doc)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    matrices = {id(p) for p in hidden_matrices(model)}
    total = 0
    for param in model.parameters():
        shard = ShardSpec.for_shard(tuple(param.shape), shard_index, world_size)
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


def bnb8_bytes(numel: int) -> int:
    """Two bitsandbytes 8-bit Adam states of ``numel`` elements (fp32 under 4096 elements)."""
    if numel < BNB_MIN_8BIT:
        return 2 * FP32 * numel
    return 2 * numel + 2 * FP32 * math.ceil(numel / BNB_BLOCK)


def _bnb8(p: nn.Parameter, embedding: bool) -> int:
    return 2 * FP32 * p.numel() if embedding else bnb8_bytes(p.numel())


def _adam_mini_blocks(p_name: str, p: nn.Parameter, heads: int) -> int:
    """Adam-mini's second-moment blocks of parameter ``p_name`` (see the module doc)."""
    if p.dim() < 2:
        return 1
    if p_name.endswith(("q_proj.weight", "k_proj.weight")):
        return heads
    return p.shape[0]


def peer_state_bytes(model: nn.Module, name: str, dtype: torch.dtype | None = None,
                     rank: int = 512, heads: int | None = None,
                     include_bases: bool = True) -> int:
    """Bytes of peer ``name``'s state for ``model`` (one of ``PEER_FORMULAS``).

    ``dtype`` sets the bytes per full-precision state element (default: the
    parameters'); ``heads`` is needed for Adam-mini (q/k blocks per head).
    """
    params = list(model.parameters())
    b = torch.empty((), dtype=dtype or params[0].dtype).element_size()
    hidden, rest = _hidden_and_rest(model)
    if name == "adafactor":
        return sum(b * (p.shape[0] + p.shape[1]) if p.dim() == 2 else b * p.numel()
                   for p in params)
    if name == "adamw8bit":
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        return sum(_bnb8(p, id(p) in embeddings) for p in params)
    if name == "muon":
        return sum(b * p.numel() for p in hidden) + _adamw(rest, b)
    if name in ("galore", "fira", "apollo"):
        basis = include_bases and name != "apollo"
        return galore_state_bytes(model, dtype or params[0].dtype, rank,
                                  include_bases=basis)
    if name == "adam_mini":
        if heads is None:
            raise ValueError("adam_mini needs heads (the attention heads per layer)")
        return sum(b * p.numel() + b * _adam_mini_blocks(n, p, heads)
                   for n, p in model.named_parameters())
    raise ValueError(f"unknown peer {name!r}; choose one of {', '.join(PEER_FORMULAS)}")
