"""Rate fits: least-squares slopes on log scales, first hitting times, quantiles."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope b of y = a + b x over the finite pairs (NaN if under 2 x values)."""
    pairs = [(float(a), float(b)) for a, b in zip(x, y)
             if math.isfinite(float(a)) and math.isfinite(float(b))]
    if len({a for a, _ in pairs}) < 2:
        return math.nan
    mean_x = sum(a for a, _ in pairs) / len(pairs)
    mean_y = sum(b for _, b in pairs) / len(pairs)
    cov = sum((a - mean_x) * (b - mean_y) for a, b in pairs)
    var = sum((a - mean_x) ** 2 for a, _ in pairs)
    return cov / var


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The exponent b of y ~ C x^b, fitted on log x and log y (non-positive y dropped)."""
    pairs = [(float(a), float(b)) for a, b in zip(x, y) if float(a) > 0 and float(b) > 0]
    return slope([math.log(a) for a, _ in pairs], [math.log(b) for _, b in pairs])


def first_hit(values: Tensor, threshold: float, hits: Tensor, step: int) -> None:
    """Record ``step`` in ``hits`` (-1 = not yet) where ``values <= threshold`` first happens."""
    new = (hits < 0) & (values <= threshold)
    hits[new] = step


def quantile(values: Tensor, q: float) -> float:
    """The q-quantile (linear interpolation) of a 1-d tensor, as a float."""
    return float(torch.quantile(values.double().flatten(), q))


def median_or_nan(values: Tensor) -> float:
    """Median of the non-negative entries (-1 marks a miss); NaN when over half missed."""
    values = values.double().flatten()
    missed = (values < 0).sum().item()
    if missed * 2 >= values.numel():
        return math.nan
    values = torch.where(values < 0, torch.full_like(values, math.inf), values)
    return float(values.median())
