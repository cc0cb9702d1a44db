"""The fast Walsh-Hadamard transform and the SRHT basis projector."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import host_to_device
from .basis import BasisProjector, orthonormalize

__all__ = ["SRHTProjector", "fwht"]


def fwht(x: Tensor) -> Tensor:
    """Unnormalized fast Walsh-Hadamard transform along the last dim: ``x @ H_n``.

    ``H_1 = [1]``, ``H_2k = [[H_k, H_k], [H_k, -H_k]]`` (Sylvester order, symmetric,
    ``H_n H_n = n I``), so ``H_n[i, j] = (-1)^popcount(i & j)``. n must be a power
    of two; leading dims are batch dims. log2(n) butterfly passes, O(n log n) each
    row, returns a new tensor.
    """
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two last dim, got {n}")
    batch = x.shape[:-1]
    y = x.reshape(-1, n).clone()
    h = 1
    while h < n:
        pairs = y.view(-1, n // (2 * h), 2, h)
        lo, hi = pairs[:, :, 0], pairs[:, :, 1]
        y = torch.stack((lo + hi, lo - hi), dim=2).view(-1, n)
        h *= 2
    return y.reshape(*batch, n)


def hadamard_rows(idx: Tensor, n: int) -> Tensor:
    """Rows ``H_n[idx, :]`` (float32, entries +-1), as the fwht of one-hot rows."""
    onehot = torch.zeros(idx.numel(), n, dtype=torch.float32, device=idx.device)
    onehot.scatter_(1, idx.view(-1, 1), 1.0)
    return fwht(onehot)


class SRHTProjector(BasisProjector):
    """Subsampled randomized Hadamard transform (data-independent).

    With s' = 2^ceil(log2 s), random signs D (s') and r distinct rows idx of H_{s'}:
    ``M = (H[idx, :] D)[:, :s] / sqrt(s')`` (r x s) and ``Q = orth(M^T)``. For
    s = s' the rows of M are already orthonormal; truncating to s columns breaks
    that, hence the QR, which keeps ``Q^T Q = I`` in every case.
    """

    name = "srht"
    data_dependent = False

    def basis(self, a: Tensor, r: int, generator: torch.Generator) -> Tensor:
        s = a.shape[0]
        s2 = 1 << (s - 1).bit_length()
        gdev = generator.device
        signs = torch.randint(0, 2, (s2,), generator=generator, device=gdev).mul_(2).sub_(1)
        idx = torch.randperm(s2, generator=generator, device=gdev)[:r]
        rows = (hadamard_rows(host_to_device(idx, a.device), s2)
                * host_to_device(signs.to(torch.float32), a.device))
        return orthonormalize(rows[:, :s].T / math.sqrt(s2))
