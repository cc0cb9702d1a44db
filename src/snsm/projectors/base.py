"""The projector contract shared by Subspace-Momentum's projectors.

A projector maps a 2-D gradient ``G`` (m x n) to a low-dimensional ``P(G)`` and
back with the transpose ``P^T``. Its state is a dict of tensors only (a basis,
or indices), so optimizer state dicts load with ``weights_only=True`` and move
across devices like any other state.

Two families exist:

* basis projectors (``svd``, ``rsvd``, ``gaussian``, ``srht``) keep an
  orthonormal basis ``Q`` (s x r) on the smaller side s = min(m, n), as GaLore
  does: for m >= n, ``P(G) = G Q`` (m x r) and ``P^T(X) = X Q^T``; for m < n,
  ``P(G) = Q^T G`` (r x n) and ``P^T(X) = Q X``.
* index projectors (``uniform``, ``topk``) keep r row indices (m >= n) or
  column indices (m < n) of the larger side: ``P(G) = G[idx]`` and ``P^T``
  scatters back into those rows (columns).

Every projector clamps the rank to the length of the side it reduces.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

Layout = dict[str, tuple[tuple[int, ...], torch.dtype]]


def host_to_device(tensor: Tensor, device: torch.device | str) -> Tensor:
    """``tensor`` (drawn on the CPU) on ``device``. To CUDA through pinned memory and a
    non-blocking copy: a copy from pageable memory makes the host wait for the device (a
    host sync), a pinned one is queued like a kernel. Same values either way."""
    device = torch.device(device)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class Projector(Protocol):
    """What Subspace-Momentum needs from a projector."""

    name: str
    # False when the state depends only on the shape and the generator (seeded projectors):
    # every rank of a sharded run then builds it alone, with no communication.
    data_dependent: bool

    def state_layout(self, shape: tuple[int, int], rank: int, dtype: torch.dtype) -> Layout:
        """Shapes and dtypes of the state tensors for a (m, n) gradient of ``dtype``."""

    def low_shape(self, shape: tuple[int, int], rank: int) -> tuple[int, int]:
        """Shape of ``P(G)`` for a (m, n) gradient."""

    def build(self, grad: Tensor, rank: int, generator: torch.Generator) -> dict[str, Tensor]:
        """A fresh state from the current 2-D gradient; random draws use ``generator`` (CPU)."""

    def project(self, grad: Tensor, state: dict[str, Tensor]) -> Tensor:
        """``P(G)``."""

    def back_add_(self, out: Tensor, low: Tensor, state: dict[str, Tensor]) -> Tensor:
        """``out += P^T(low)`` in place; returns ``out``."""
