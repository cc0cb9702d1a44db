"""Subset-Norm partitions: which coordinates share one adaptive step size.

A partition views a tensor as ``view`` and sums ``g**2`` over the ``dims`` of
that view (keepdim), giving one accumulator per subset. ``dims == ()`` means one
subset per coordinate (Adam / AdaGrad).

Rules (keyword ``subset_size``):

* ``"heuristic"`` (the paper's): an m x n tensor gets one subset per index of
  its larger dimension, each of the min(m, n) entries along the smaller one
  (m >= n: state (m, 1); m < n: state (1, n)). Tensors of more than two dims are
  viewed as (shape[0], rest); tensors of fewer than two dims are per coordinate.
* a positive int k: the flattened tensor in contiguous subsets of size k', the
  largest divisor of numel that is <= k (state (numel / k', 1)).
* ``"sqrt"``: k = floor(sqrt(numel)), then as an int (O(sqrt d) memory).
* ``"tensor"``: the whole tensor is one subset (AdaGrad-Norm), state (1,).
* ``1``: per coordinate.

Explicit rules (an int, ``"sqrt"``, ``"tensor"``) apply to tensors of any
dimension: asking for AdaGrad-Norm on a vector gets AdaGrad-Norm.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

SUBSET_RULES = ("heuristic", "sqrt", "tensor")


@dataclass(frozen=True)
class Partition:
    """A view of the tensor and the dims of that view summed into one subset."""

    view: tuple[int, ...]
    dims: tuple[int, ...]

    @property
    def per_coordinate(self) -> bool:
        return not self.dims

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape of the accumulator: the view with the reduced dims kept as 1."""
        return tuple(1 if i in self.dims else size for i, size in enumerate(self.view))

    def reduce_(self, sums: Tensor) -> Tensor:
        """Finish the float32 subset sums of this tensor's coordinates: nothing to add here.
        A shard's partition whose subsets span other ranks all-reduces them
        (:mod:`snsm.optim.sharding`)."""
        return sums


def largest_divisor_at_most(numel: int, k: int) -> int:
    """The largest divisor of ``numel`` that is <= ``k`` (at least 1)."""
    best = 1
    for d in range(1, math.isqrt(numel) + 1):
        if numel % d == 0:
            for candidate in (d, numel // d):
                if best < candidate <= k:
                    best = candidate
    return best


@functools.lru_cache(maxsize=4096)
def resolve_partition(shape: tuple[int, ...], subset_size: int | str) -> Partition:
    """The partition that ``subset_size`` gives a tensor of ``shape``."""
    numel = math.prod(shape)
    if numel <= 1:
        return Partition(tuple(shape), ())
    if subset_size == "heuristic":
        if len(shape) < 2:
            return Partition(tuple(shape), ())
        m, n = shape[0], numel // shape[0]
        return Partition((m, n), (1,) if m >= n else (0,))
    if subset_size == "tensor":
        return Partition((numel,), (0,))
    k = math.isqrt(numel) if subset_size == "sqrt" else int(subset_size)
    size = largest_divisor_at_most(numel, k)
    if size < k and size * 2 <= k:
        logger.warning(
            "subset_size=%r gives subsets of %d for a tensor of %d elements "
            "(the largest divisor of numel <= %d)", subset_size, size, numel, k)
    if size <= 1:
        return Partition(tuple(shape), ())
    return Partition((numel // size, size), (1,))


def sum_squares(grad: Tensor, partition: Partition, dtype: torch.dtype | None = None) -> Tensor:
    """s_i = sum over subset i of g_j**2, computed in float32, shaped ``state_shape``, returned
    in ``dtype`` (default: the gradient's)."""
    view = grad.reshape(partition.view)
    norms = torch.linalg.vector_norm(view, 2, dim=partition.dims, keepdim=True, dtype=torch.float32)
    return partition.reduce_(norms.square_()).to(dtype or grad.dtype)
