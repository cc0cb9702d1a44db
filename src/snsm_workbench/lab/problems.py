"""Synthetic objectives and noise models of the lab (all randomness from a Generator).

* ``wavy``: psi(x) = x^2/2 + 1.5 (1 - cos 2x), non-convex (psi'' = 1 + 6 cos 2x
  lies in [-5, 7]), L-smooth with L = 7, psi >= 0 = psi(0), with local maxima
  near |x| = 1.9 and spurious local minima near |x| = 2.6.
* ``pl``: phi(x) = x^2 + 3 sin^2 x (Karimi, Nutini, Schmidt 2016), non-convex
  but Polyak-Lojasiewicz, phi'' in [-4, 8], phi >= 0 = phi(0).

A :class:`Separable` problem is f(x) = sum_i scale_i h(x_i) over the last dim of
a batch ``x`` of shape (runs, d), so one tensor holds many independent runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

WAVY_SMOOTHNESS = 7.0
PL_SMOOTHNESS = 8.0


def wavy(x: Tensor) -> Tensor:
    return 0.5 * x * x + 1.5 * (1 - torch.cos(2 * x))


def wavy_grad(x: Tensor) -> Tensor:
    return x + 3.0 * torch.sin(2 * x)


def pl(x: Tensor) -> Tensor:
    return x * x + 3.0 * torch.sin(x) ** 2


def pl_grad(x: Tensor) -> Tensor:
    return 2 * x + 3.0 * torch.sin(2 * x)


SHAPES = {"wavy": (wavy, wavy_grad, WAVY_SMOOTHNESS), "pl": (pl, pl_grad, PL_SMOOTHNESS)}


@dataclass
class Separable:
    """f(x) = sum_i scale_i h(x_i); coordinate i is (scale_i * L_h)-smooth; f* = 0."""

    scale: Tensor
    shape: str = "wavy"

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {self.shape!r}")

    def value(self, x: Tensor) -> Tensor:
        """f per run: shape x.shape[:-1]."""
        return (self.scale * SHAPES[self.shape][0](x)).sum(-1)

    def grad(self, x: Tensor) -> Tensor:
        return self.scale * SHAPES[self.shape][1](x)

    @property
    def smoothness(self) -> Tensor:
        """Coordinate-wise smoothness constants L_i."""
        return self.scale * SHAPES[self.shape][2]


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def gaussian_noise(shape: tuple[int, ...], std: Tensor | float, gen: torch.Generator) -> Tensor:
    """N(0, std_i^2) per coordinate; ``std`` broadcasts over the last dim."""
    return torch.randn(shape, generator=gen) * std


def sub_weibull_noise(shape: tuple[int, ...], theta: float, gen: torch.Generator) -> Tensor:
    """Unit-variance symmetric noise with P(|z| > t) = exp(-(c t)^(1/theta)).

    z = s E^theta / sqrt(Gamma(2 theta + 1)), E ~ Exp(1), s a random sign: theta = 1/2
    has Gaussian-type tails (sub-Gaussian), theta = 1 is Laplace (sub-exponential),
    larger theta is heavier (sub-Weibull(theta)).
    """
    if theta <= 0:
        raise ValueError(f"theta must be > 0, got {theta!r}")
    uniform = torch.rand(shape, generator=gen).clamp_min_(1e-12)
    sign = torch.randint(0, 2, shape, generator=gen).mul_(2).sub_(1)
    exponential = -torch.log(uniform)
    return sign * exponential**theta / math.sqrt(math.gamma(2 * theta + 1))


def uniform_init(shape: tuple[int, ...], radius: float, gen: torch.Generator) -> Tensor:
    """x0 uniform in [-radius, radius]^d per run."""
    return (torch.rand(shape, generator=gen) * 2 - 1) * radius
