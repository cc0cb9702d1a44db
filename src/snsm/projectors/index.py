"""Index projectors: r rows (m >= n) or columns (m < n) of the larger side.

With L = max(m, n), r = min(rank, L) and sorted distinct indices idx (r,):

* m >= n: ``P(G) = G[idx, :]`` (r x n), ``P^T(X)`` scatters X into rows idx;
* m <  n: ``P(G) = G[:, idx]`` (m x r), ``P^T(X)`` scatters X into columns idx.

``P P^T = I`` (distinct indices) and ``P^T P`` zeroes every row (column) not in
idx. The state is ``{"indices": int64 (r,)}`` on the gradient's device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Layout, host_to_device
from .basis import clamp_rank, matrix_shape

__all__ = ["IndexProjector", "TopKProjector", "UniformProjector"]


def _dim(shape: tuple[int, ...] | torch.Size) -> int:
    """The dim indexed: 0 (rows) for m >= n, 1 (columns) for m < n."""
    m, n = matrix_shape(shape)
    return 0 if m >= n else 1


class IndexProjector:
    """Shared ``project`` / ``back_add_`` / layout for r indices of the larger side."""

    name = "index"
    # Whether the indices depend on the gradient (False: only on the shape and the generator).
    data_dependent = True

    def select(self, grad: Tensor, r: int, generator: torch.Generator) -> Tensor:
        """r distinct indices into ``grad.shape[dim]`` (any order, any device)."""
        raise NotImplementedError

    def state_layout(self, shape: tuple[int, int], rank: int, dtype: torch.dtype) -> Layout:
        return {"indices": ((clamp_rank(rank, max(matrix_shape(shape))),), torch.int64)}

    def low_shape(self, shape: tuple[int, int], rank: int) -> tuple[int, int]:
        m, n = matrix_shape(shape)
        r = clamp_rank(rank, max(m, n))
        return (r, n) if m >= n else (m, r)

    def build(self, grad: Tensor, rank: int, generator: torch.Generator) -> dict[str, Tensor]:
        r = clamp_rank(rank, max(matrix_shape(grad.shape)))
        idx = torch.sort(self.select(grad, r, generator)).values
        return {"indices": host_to_device(idx.to(torch.int64), grad.device)}

    def project(self, grad: Tensor, state: dict[str, Tensor]) -> Tensor:
        return grad.index_select(_dim(grad.shape), state["indices"])

    def back_add_(self, out: Tensor, low: Tensor, state: dict[str, Tensor]) -> Tensor:
        return out.index_add_(_dim(out.shape), state["indices"], low.to(out.dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class UniformProjector(IndexProjector):
    """r indices drawn uniformly without replacement (``randperm`` from the generator)."""

    name = "uniform"
    data_dependent = False

    def select(self, grad: Tensor, r: int, generator: torch.Generator) -> Tensor:
        size = grad.shape[_dim(grad.shape)]
        return torch.randperm(size, generator=generator, device=generator.device)[:r]


class TopKProjector(IndexProjector):
    """The r rows (m >= n) or columns (m < n) of largest L2 norm (float32 norms)."""

    name = "topk"

    def select(self, grad: Tensor, r: int, generator: torch.Generator) -> Tensor:
        dim = _dim(grad.shape)
        norms = torch.linalg.vector_norm(grad, dim=1 - dim, dtype=torch.float32)
        return torch.topk(norms, r, sorted=False).indices
