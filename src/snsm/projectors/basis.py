"""Basis projectors: an orthonormal basis ``Q`` (s x r) on the smaller side.

With s = min(m, n) and r = min(rank, s):

* m >= n: ``P(G) = G Q`` (m x r), ``P^T(X) = X Q^T``;
* m <  n: ``P(G) = Q^T G`` (r x n), ``P^T(X) = Q X``.

Since ``Q^T Q = I``, ``P(P^T(X)) = X`` and ``P^T P`` is the orthogonal projection
onto span(Q). Subclasses only say how to compute ``Q``: they receive the gradient
oriented as ``A`` (s x l), ``A = G^T`` for m >= n and ``A = G`` for m < n, so that
the basis always lives in the column space of ``A``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Layout, host_to_device

__all__ = [
    "BasisProjector",
    "GaussianProjector",
    "RSVDProjector",
    "SVDProjector",
    "subspace_distance",
]


def matrix_shape(shape: tuple[int, ...] | torch.Size) -> tuple[int, int]:
    """``(m, n)`` of a 2-D shape; ValueError otherwise."""
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"projectors need a non-empty 2-D gradient, got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def clamp_rank(rank: int, side: int) -> int:
    """``min(rank, side)``; ValueError for a rank below 1."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    return min(rank, side)


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    """Standard normal float32 draws from ``generator`` (on its device), moved to ``device``."""
    z = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return host_to_device(z, device)


def orthonormalize(x: Tensor) -> Tensor:
    """Orthonormal columns spanning ``x`` (reduced Householder QR, so ``Q^T Q = I`` always)."""
    return torch.linalg.qr(x, mode="reduced").Q


def subspace_distance(q1: Tensor, q2: Tensor) -> Tensor:
    r"""sin of the largest principal angle between span(Q1) and span(Q2) (orthonormal
    columns, as many of each): :math:`\|(I - Q_1 Q_1^T) Q_2\|_2`, in float64; 0 for the
    same subspace, 1 when some direction of one is orthogonal to the other."""
    q1, q2 = q1.double(), q2.double()
    return torch.linalg.matrix_norm(q2 - q1 @ (q1.T @ q2), ord=2)


def top_left_singular(a: Tensor, r: int) -> Tensor:
    """The r leading left singular vectors of ``a`` (exact float32 SVD)."""
    u, _, _ = torch.linalg.svd(a.float(), full_matrices=False)
    return u[:, :r]


class BasisProjector:
    """Shared ``project`` / ``back_add_`` / layout for a basis ``Q`` on the smaller side."""

    name = "basis"
    # Whether the basis depends on the gradient (False: only on the shape and the generator).
    data_dependent = True

    def basis(self, a: Tensor, r: int, generator: torch.Generator) -> Tensor:
        """Float32 ``Q`` (s x r), orthonormal columns, on ``a.device``, for ``A`` (s x l)."""
        raise NotImplementedError

    def state_layout(self, shape: tuple[int, int], rank: int, dtype: torch.dtype) -> Layout:
        s = min(matrix_shape(shape))
        return {"basis": ((s, clamp_rank(rank, s)), dtype)}

    def low_shape(self, shape: tuple[int, int], rank: int) -> tuple[int, int]:
        m, n = matrix_shape(shape)
        r = clamp_rank(rank, min(m, n))
        return (m, r) if m >= n else (r, n)

    def build(self, grad: Tensor, rank: int, generator: torch.Generator) -> dict[str, Tensor]:
        m, n = matrix_shape(grad.shape)
        r = clamp_rank(rank, min(m, n))
        a = grad.T if m >= n else grad
        # A copy of exactly s x r: the SVD's basis is a view of its whole s x s U, which the
        # state would otherwise keep alive (s/r times the basis; 8x at rank 512 of 4096).
        return {"basis": self.basis(a, r, generator).to(
            grad.dtype, memory_format=torch.contiguous_format, copy=True)}

    def project(self, grad: Tensor, state: dict[str, Tensor]) -> Tensor:
        m, n = matrix_shape(grad.shape)
        q = state["basis"].to(grad.dtype)
        return grad @ q if m >= n else q.T @ grad

    def back_add_(self, out: Tensor, low: Tensor, state: dict[str, Tensor]) -> Tensor:
        m, n = matrix_shape(out.shape)
        q = state["basis"].to(low.dtype)
        if out.dtype != low.dtype:
            return out.add_(low @ q.T if m >= n else q @ low)
        return out.addmm_(low, q.T) if m >= n else out.addmm_(q, low)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SVDProjector(BasisProjector):
    """GaLore's basis: the top-r left singular vectors of ``A`` (exact float32 SVD).

    For m >= n these are the top right singular vectors of ``G``; for m < n its top
    left ones. ``P^T P G`` is then the best rank-r approximation of ``G``.
    """

    name = "svd"

    def basis(self, a: Tensor, r: int, generator: torch.Generator) -> Tensor:
        return top_left_singular(a, r)


class RSVDProjector(BasisProjector):
    """Randomized SVD (Halko, Martinsson and Tropp 2011, Alg. 4.4 + 5.1).

    With k = r + p and a Gaussian ``Omega`` (l x k): ``Y = orth(A Omega)``, then q
    power iterations ``Y = orth(A orth(A^T Y))``; finally ``B = Y^T A = U S V^T`` and
    ``Q = Y U[:, :r]``. The error decays like ``(sigma_{k+1} / sigma_r)^(2q+1)``.
    Falls back to the exact SVD when k >= s (nothing to save).

    The cheaper refresh for large matrices: an SVD of the k x l sketch instead of the
    s x l matrix (the full SVD is slow on GPUs). Where the spectrum has a gap after
    sigma_r, it gives the SVD's subspace with the defaults (p = 8, q = 2) to
    ``subspace_distance <= 1e-2`` for sigma_{r+1} / sigma_r <= 1/4 and ``<= 1e-4`` for
    <= 1/10 (tested at rank 128 on 512 x 1376 matrices). Without a gap no method pins the
    subspace down: then neither does the SVD itself, from one device to another.
    """

    name = "rsvd"

    def __init__(self, oversample: int = 8, power_iters: int = 2) -> None:
        if oversample < 0 or power_iters < 0:
            raise ValueError(
                f"oversample and power_iters must be >= 0, got {oversample} and {power_iters}"
            )
        self.oversample = oversample
        self.power_iters = power_iters

    def basis(self, a: Tensor, r: int, generator: torch.Generator) -> Tensor:
        s, l = a.shape
        k = r + self.oversample
        if k >= s:
            return top_left_singular(a, r)
        a = a.float()
        y = orthonormalize(a @ randn((l, k), generator, a.device))
        for _ in range(self.power_iters):
            y = orthonormalize(a @ orthonormalize(a.T @ y))
        u, _, _ = torch.linalg.svd(y.T @ a, full_matrices=False)
        return y @ u[:, :r]

    def __repr__(self) -> str:
        return f"RSVDProjector(oversample={self.oversample}, power_iters={self.power_iters})"


class GaussianProjector(BasisProjector):
    """Data-independent basis: ``Q = orth(Z)`` with Z (s x r) i.i.d. standard normal."""

    name = "gaussian"
    data_dependent = False

    def basis(self, a: Tensor, r: int, generator: torch.Generator) -> Tensor:
        return orthonormalize(randn((a.shape[0], r), generator, a.device))
