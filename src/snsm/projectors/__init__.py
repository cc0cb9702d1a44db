"""Subspace-Momentum projectors, by name.

Basis projectors (orthonormal Q on the smaller side): ``svd``, ``rsvd``,
``gaussian``, ``srht``. Index projectors (rows/columns of the larger side):
``uniform``, ``topk``. See :mod:`snsm.projectors.base` for the contract.
"""

from __future__ import annotations

from .base import Layout, Projector
from .basis import BasisProjector, GaussianProjector, RSVDProjector, SVDProjector
from .index import IndexProjector, TopKProjector, UniformProjector
from .srht import SRHTProjector, fwht

__all__ = [
    "PROJECTORS",
    "BasisProjector",
    "GaussianProjector",
    "IndexProjector",
    "Layout",
    "Projector",
    "RSVDProjector",
    "SRHTProjector",
    "SVDProjector",
    "TopKProjector",
    "UniformProjector",
    "fwht",
    "get_projector",
]

PROJECTORS: dict[str, Projector] = {
    p.name: p
    for p in (
        SVDProjector(),
        RSVDProjector(),
        GaussianProjector(),
        SRHTProjector(),
        UniformProjector(),
        TopKProjector(),
    )
}


def get_projector(name: str) -> Projector:
    """The projector registered as ``name``; ValueError naming the valid choices otherwise."""
    try:
        return PROJECTORS[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(PROJECTORS))
        raise ValueError(f"unknown projector {name!r}; choose one of: {valid}") from None
