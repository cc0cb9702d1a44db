"""``subset-norm``: AdaGrad-SN's dimension dependence against AdaGrad and AdaGrad-Norm.

Problem: f(x) = sum_i psi(x_i), psi the non-convex ``wavy`` function (L = 7),
x0 uniform in [-3, 3]^d, stochastic gradients g = grad f(x) + xi with
coordinate-wise Gaussian xi: *dense* noise (std 1 on every coordinate) or
*sparse* noise (std 1 on 4 coordinates, 0 elsewhere). Dimensions d = 4 n^2, so a
d-vector is also a (4n, n) weight.

Methods (AdaGrad without momentum, subsets of k coordinates sharing one step size):
k = 1 (``snsm.AdaGrad``), k = d (AdaGrad-Norm), k = sqrt(d), and k = n, the
paper's heuristic on the (4n, n) weight (one subset per row). k > 1 runs
``snsm.AdaGradSN`` with beta1 = 0 on a (seeds, d) tensor, whose contiguous
k-subsets never straddle two seeds; tests/lab check this equals ``AdaGradNorm``
and the heuristic rule on the matrix itself.

Figure: the median over seeds of min_t ||grad f(x_t)||^2 at a fixed T, fitted as
C d^b; each method's lr is tuned once at the smallest d (grid) and then held
fixed over d, as the theory's step sizes do not depend on d.

The paper's rates (noise density beta): coordinate d^(1.5+beta)/sqrt T + d^2.5/T,
norm d^(2.5 beta)/sqrt T + d^(3 beta)/T, Subset-Norm (k ~ sqrt d)
d^(0.3+1.8 beta)/sqrt T + ...: under dense noise Subset-Norm's exponent is the
smallest; under sparse noise it is no worse than the better of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import snsm
from snsm.lab import problems
from snsm.lab.fitting import loglog_slope
from snsm.lab.report import Result, new_figure, write_outputs

NAME = "subset-norm"
CLAIM = ("AdaGrad-SN (k ~ sqrt d and the row heuristic) depends on d no worse than the better "
         "of AdaGrad (k=1) and AdaGrad-Norm (k=d), and better than both under dense noise")
# From the paper's ordering of exponents, with a 0.15 allowance for fit noise where the
# claim is "no worse"; under dense noise the claim is strict (difference below 0).
EXPECTED = {"dense_sqrt_minus_best": (None, 0.0), "dense_heuristic_minus_best": (None, 0.0),
            "sparse_sqrt_minus_best": (None, 0.15), "sparse_heuristic_minus_best": (None, 0.15)}
METHODS = ("coordinate", "norm", "sqrt", "heuristic")
NOISY_SPARSE = 4


@dataclass(frozen=True)
class Config:
    sides: tuple[int, ...]
    seeds: int
    steps: int
    lrs: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
    sigma: float = 1.0
    radius: float = 3.0
    eps: float = 1e-8


QUICK = Config(sides=(4, 8, 16, 32), seeds=4, steps=200, lrs=(0.1, 0.3, 1.0))
FULL = Config(sides=(4, 8, 16, 32, 64), seeds=8, steps=1000)


def subset_size(method: str, side: int) -> int:
    """k for a d = 4 side^2 problem: 1, d, sqrt d = 2 side, or side (a row of (4 side, side))."""
    d = 4 * side * side
    return {"coordinate": 1, "norm": d, "sqrt": 2 * side, "heuristic": side}[method]


def make_optimizer(method: str, param: torch.Tensor, side: int, lr: float, eps: float):
    """AdaGrad (k = 1) or AdaGradSN without momentum (k > 1) from the library."""
    if method == "coordinate":
        return snsm.AdaGrad([param], lr=lr, eps=eps)
    return snsm.AdaGradSN([param], lr=lr, betas=(0.0, 0.999), eps=eps,
                          subset_size=subset_size(method, side))


def noise_std(kind: str, d: int, sigma: float) -> torch.Tensor:
    std = torch.full((d,), sigma)
    if kind == "sparse":
        std[NOISY_SPARSE:] = 0.0
    return std


def min_grad_norm(method: str, side: int, kind: str, lr: float, cfg: Config, seed: int) -> float:
    """Median over seeds of min_t ||grad f(x_t)||^2 after ``cfg.steps`` steps."""
    d = 4 * side * side
    gen = problems.generator(seed)
    problem = problems.Separable(torch.ones(d))
    x = problems.uniform_init((cfg.seeds, d), cfg.radius, gen).requires_grad_()
    std = noise_std(kind, d, cfg.sigma)
    optimizer = make_optimizer(method, x, side, lr, cfg.eps)
    best = torch.full((cfg.seeds,), math.inf)
    for _ in range(cfg.steps):
        grad = problem.grad(x.detach())
        torch.minimum(best, grad.square().sum(-1), out=best)
        x.grad = grad + problems.gaussian_noise(grad.shape, std, gen)
        optimizer.step()
    best = torch.minimum(best, problem.grad(x.detach()).square().sum(-1))
    return float(best.nan_to_num(math.inf).median())


def tune_lr(method: str, kind: str, cfg: Config, seed: int) -> float:
    side = cfg.sides[0]
    scores = [min_grad_norm(method, side, kind, lr, cfg, seed) for lr in cfg.lrs]
    return cfg.lrs[min(range(len(scores)), key=scores.__getitem__)]


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    rows, figure = [], {}
    curves: dict[tuple[str, str], list[float]] = {}
    dims = [4 * s * s for s in cfg.sides]
    for kind in ("dense", "sparse"):
        for method in METHODS:
            lr = tune_lr(method, kind, cfg, seed)
            values = [min_grad_norm(method, side, kind, lr, cfg, seed + 1) for side in cfg.sides]
            curves[kind, method] = values
            exponent = loglog_slope(dims, values)
            figure[f"{kind}_{method}_exponent"] = exponent
            rows += [{"noise": kind, "method": method, "d": d,
                      "k": subset_size(method, side), "lr": lr, "min_grad_sq": value}
                     for d, side, value in zip(dims, cfg.sides, values)]
        best = min(figure[f"{kind}_coordinate_exponent"], figure[f"{kind}_norm_exponent"])
        for method in ("sqrt", "heuristic"):
            figure[f"{kind}_{method}_minus_best"] = figure[f"{kind}_{method}_exponent"] - best
            figure[f"{kind}_{method}_minus_norm"] = (figure[f"{kind}_{method}_exponent"]
                                                     - figure[f"{kind}_norm_exponent"])
    result = Result(NAME, CLAIM, figure, EXPECTED, rows,
                    notes=f"T={cfg.steps}, {cfg.seeds} seeds, lr tuned at d={dims[0]} over "
                          f"{list(cfg.lrs)} and held fixed; figure: exponent b of "
                          "median min_t ||grad f||^2 ~ C d^b")
    return write_outputs(result, out, _plot(curves, dims, figure))


def _plot(curves, dims, figure):
    fig, axes = new_figure(ncols=2)
    for ax, kind in zip(axes, ("dense", "sparse")):
        for method in METHODS:
            b = figure[f"{kind}_{method}_exponent"]
            ax.loglog(dims, curves[kind, method], "o-", label=f"{method} (d^{b:.2f})")
        ax.set(title=f"{kind} noise", xlabel="d", ylabel="median min_t ||grad f||^2")
        ax.legend(fontsize=8)
    return fig
