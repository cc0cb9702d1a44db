"""``memory-sample``: the price of memory in streaming linear regression.

Sharan, Sidford, Valiant (STOC 2019): on a stream (a_i, b_i), a_i ~ N(0, I_d),
b_i = <a_i, x> + eta_i, |x| = 1, eta_i uniform in [-2^(-d/5), 2^(-d/5)], any
algorithm with fewer than d^2/4 bits of memory needs Omega(d log log(1/eps))
samples to reach error eps, while about d samples suffice with quadratic memory.

Here, in float64 over seeds: recursive least squares (exact least squares on the
first n samples, a d x d matrix of state: quadratic memory) against two O(d)-memory
streaming methods, randomized Kaczmarz / normalized LMS (x += (b - <a, x>) a / |a|^2)
and SGD with step 1/d. Measure: samples until |x_n - x| <= eps (median over seeds),
for targets eps >= 100 * 2^(-d/5), above the noise level.
Kaczmarz contracts E|e|^2 by (1 - 1/d) per sample, so it needs about
2 d ln(1/eps) samples: a slope of 2 in d ln(1/eps), while least squares stays at
about d. One experiment cannot prove a lower bound: this shows the trade-off the
bound is about, for these particular algorithms only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from snsm_workbench.lab import problems
from snsm_workbench.lab.fitting import first_hit, median_or_nan, slope
from snsm_workbench.lab.report import Result, new_figure, write_outputs

NAME = "memory-sample"
CLAIM = ("with O(d^2) memory about d samples reach error eps (least squares), while the O(d)-"
         "memory Kaczmarz / LMS stream needs about 2 d ln(1/eps) samples, growing with 1/eps "
         "(an illustration of the memory-sample trade-off, not a proof of the lower bound)")
# Theory: Kaczmarz's E|e|^2 shrinks by (1 - 1/d) per sample -> samples / d ~ 2 ln(1/eps);
# least squares needs n ~ d (n/d -> 1) for every eps above the noise floor.
EXPECTED = {"kaczmarz_slope": (1.5, 2.5), "lstsq_samples_over_d_max": (1.0, 1.25)}
METHODS = ("lstsq", "kaczmarz", "sgd")


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...]
    seeds: int
    epsilons: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
    horizon_per_d: int = 25


QUICK = Config(dims=(100,), seeds=20)
FULL = Config(dims=(100, 150), seeds=50, epsilons=(1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
              horizon_per_d=40)


def stream(d: int, seeds: int, n: int, gen: torch.Generator):
    """x (seeds, d) with |x| = 1, and n samples (a, b) per seed, noise 2^(-d/5)-uniform."""
    x = torch.randn(seeds, d, generator=gen, dtype=torch.float64)
    x /= x.norm(dim=-1, keepdim=True)
    a = torch.randn(n, seeds, d, generator=gen, dtype=torch.float64)
    level = 2.0 ** (-d / 5)
    eta = (torch.rand(n, seeds, generator=gen, dtype=torch.float64) * 2 - 1) * level
    return x, a, (a * x).sum(-1) + eta


def samples_to_eps(method: str, x, a, b, epsilons) -> torch.Tensor:
    """First n (samples seen) with |x_n - x| <= eps, per (eps, seed); -1 = never."""
    seeds, d = x.shape
    hits = torch.full((len(epsilons), seeds), -1, dtype=torch.long)
    estimate = torch.zeros(seeds, d, dtype=torch.float64)
    if method == "lstsq":
        gram = torch.zeros(seeds, d, d, dtype=torch.float64)
        moment = torch.zeros(seeds, d, dtype=torch.float64)
    for n in range(a.shape[0]):
        ai, bi = a[n], b[n]
        if method == "lstsq":
            gram += ai[:, :, None] * ai[:, None, :]
            moment += ai * bi[:, None]
            if n + 1 < d:
                continue
            estimate = torch.linalg.solve(gram, moment)
        else:
            residual = bi - (ai * estimate).sum(-1)
            step = 1.0 / (ai * ai).sum(-1) if method == "kaczmarz" else torch.full_like(bi, 1 / d)
            estimate += (residual * step)[:, None] * ai
        error = (estimate - x).norm(dim=-1)
        for i, eps in enumerate(epsilons):
            first_hit(error, eps, hits[i], n + 1)
        if bool((hits >= 0).all()):
            break
    return hits


def reachable(epsilons: tuple[float, ...], d: int) -> tuple[float, ...]:
    """The targets at least 100x the noise level 2^(-d/5) (the bound's regime)."""
    return tuple(eps for eps in epsilons if eps >= 100 * 2.0 ** (-d / 5))


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    rows, figure, curves = [], {}, {}
    slopes, lstsq_ratios = [], []
    for d in cfg.dims:
        gen = problems.generator(seed + d)
        x, a, b = stream(d, cfg.seeds, cfg.horizon_per_d * d, gen)
        epsilons = reachable(cfg.epsilons, d)
        for method in METHODS:
            hits = samples_to_eps(method, x, a, b, epsilons)
            medians = [median_or_nan(h) for h in hits]
            curves[d, method] = medians
            rows += [{"d": d, "method": method, "eps": eps, "median_samples": m,
                      "samples_over_d": m / d, "memory_floats": d * d + d if method == "lstsq"
                      else d} for eps, m in zip(epsilons, medians)]
        logs = [math.log(1 / eps) for eps in epsilons]
        figure[f"kaczmarz_slope_d{d}"] = slope(logs, [m / d for m in curves[d, "kaczmarz"]])
        figure[f"sgd_slope_d{d}"] = slope(logs, [m / d for m in curves[d, "sgd"]])
        slopes.append(figure[f"kaczmarz_slope_d{d}"])
        lstsq_ratios += [m / d for m in curves[d, "lstsq"]]
    figure["kaczmarz_slope"] = min(slopes) if all(map(math.isfinite, slopes)) else math.nan
    figure["lstsq_samples_over_d_max"] = max(lstsq_ratios)
    result = Result(NAME, CLAIM, figure, EXPECTED, rows,
                    notes=f"{cfg.seeds} seeds, float64; slopes: samples/d against ln(1/eps); "
                          "one experiment cannot prove a lower bound")
    return write_outputs(result, out, _plot(cfg, curves))


def _plot(cfg, curves):
    fig, (ax,) = new_figure()
    for (d, method), medians in curves.items():
        ax.semilogx([1 / e for e in reachable(cfg.epsilons, d)], [m / d for m in medians], "o-",
                    label=f"{method}, d={d}")
    ax.set(xlabel="1/eps", ylabel="median samples / d", title="samples to |x_n - x| <= eps")
    ax.legend(fontsize=8)
    return fig
