"""``subset-norm``: AdaGrad-SN's dependence on d, asked as two questions.

The paper's rate table (AdaGrad without momentum, subsets of k coordinates sharing one
step size; non-convex L-smooth f, coordinate-wise sub-Gaussian noise of density beta,
high probability, O~ hides log factors) gives, with T steps,

    k = 1 (AdaGrad):        d^(1.5+beta)/sqrt T + d^2.5/T
    k = d (AdaGrad-Norm):   d^(2.5 beta)/sqrt T + d^(3 beta)/T
    k ~ sqrt d (SN):        d^(0.3+1.8 beta)/sqrt T + d^(beta+1)/T           (beta <= 2/3)
                            d^(0.3+1.8 beta)/sqrt T + d^(1.6 beta+0.6)/T     (beta >= 2/3)

These are upper bounds: they rank guarantees, not measured errors. So the experiment asks

(i) **consistency** (the claim, the verdict): for each method and beta, the exponent b of
    the measure M(d) ~ C d^b does not exceed the exponent of its bound. At a fixed T the
    bound C (d^a/sqrt T + d^c/T) grows like d^max(a, c) once d is large, whatever its
    constants, so the check is b <= max(a, c) + TOL. TOL = 0.35: O~ hides polylog
    factors, and a hidden (ln d)^2 adds 2 ln(ln 16384 / ln 64) / ln 256 = 0.31 to an
    exponent fitted over d = 64..16384; 0.05 more for the seed noise of the fit.
(ii) **practice** (a finding, no verdict: the paper states no such measured claim): with
    each method's lr tuned at every d (same grid, seeds and T for all), where does SN fall
    between AdaGrad and AdaGrad-Norm, and how does its ratio to the better of them move
    with d?

The measure is the one the high-probability theorems bound: the average
M = (1/T) sum_{t<T} ||grad f(x_t)||^2 (it also bounds min_t), median over seeds.

Problem, built so that the bound's bookkeeping applies (Delta = f(x0) - f* and L do not
grow with d; only the noise does, as in the table, where AdaGrad-Norm's bound is d-free
at beta = 0): f(x) = sum_i psi(x_i) (``wavy``, L = 7), d = 4 n^2 (also a (4n, n) weight),
x0 with ACTIVE = 4 coordinates uniform in [-3, 3] (the non-convex region) and the other
d - 4 uniform in [-1, 1] / sqrt d (together Delta ~ 1.2 and ||grad f||^2 ~ 16 whatever d).
Noise: std sigma = 1 on round(d^beta) coordinates (positions drawn once per d and beta,
shared by every method), none elsewhere: ||sigma||_0 = d^beta.

Methods: ``SNSM(momentum="none", accumulator="sum", bias_correction=False, subset_size=k)``
with k = 1 (= ``snsm.AdaGrad``), d (= ``snsm.AdaGradNorm``), sqrt d = 2n, and n (the
paper's heuristic on the (4n, n) weight, one subset per row). Every lr of the grid runs in
one optimizer, one param group per lr, each a (seeds, d) view of one tensor whose rows
are runs (contiguous subsets never straddle rows; tests/lab check the rows equal the
library's AdaGrad, AdaGrad-Norm and heuristic AdaGrad-SN on one run).

Protocol: the grid runs on one stream of seeds; (i) uses the lr best at the smallest d,
held fixed over d (the theorem's step size does not depend on d); (ii) the lr best at
each d; both are then measured on a fresh stream of seeds. A tuned lr at an end of the
grid is flagged (``tuned_at_edge``): there the method might do better off the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import snsm
from snsm_workbench.lab import problems
from snsm_workbench.lab.fitting import loglog_slope
from snsm_workbench.lab.report import Question, Result, new_figure, write_outputs

NAME = "subset-norm"
CLAIM = ("consistency with the paper's rate table: for every method (k = 1, d, sqrt d, the "
         "row heuristic) and noise density beta, the exponent of d in the measured "
         "(1/T) sum_t ||grad f(x_t)||^2 is at most its bound's exponent (+ TOL)")
METHODS = ("coordinate", "norm", "sqrt", "heuristic")
SUBSET_METHODS = ("sqrt", "heuristic")
BETAS = (0.0, 0.5, 1.0)
TOL = 0.35  # polylog factors hidden by O~ plus fit noise (module docstring)
ACTIVE = 4  # coordinates started in the non-convex region
GRID = tuple(10 ** (e / 2) for e in range(-6, 5))  # 0.001, 0.00316, ..., 100: the same for all


def bound_terms(method: str, beta: float) -> tuple[float, float]:
    """Exponents (a, c) of d in the bound d^a / sqrt T + d^c / T (the paper's rate table)."""
    if method == "coordinate":
        return 1.5 + beta, 2.5
    if method == "norm":
        return 2.5 * beta, 3.0 * beta
    return 0.3 + 1.8 * beta, (beta + 1.0) if beta <= 2 / 3 else (1.6 * beta + 0.6)


def bound_exponent(method: str, beta: float) -> float:
    """max(a, c): how fast the bound grows in d at a fixed T, whatever its constants."""
    return max(bound_terms(method, beta))


def label(beta: float) -> str:
    return f"beta{beta:g}"


EXPECTED = {f"{label(beta)}_{method}_exponent": (None, bound_exponent(method, beta) + TOL)
            for beta in BETAS for method in METHODS}


@dataclass(frozen=True)
class Config:
    sides: tuple[int, ...]
    seeds: int
    steps: int
    lrs: tuple[float, ...] = GRID
    sigma: float = 1.0
    radius: float = 3.0
    eps: float = 1e-8


QUICK = Config(sides=(2, 4, 8, 16), seeds=4, steps=150, lrs=(0.1, 1.0, 10.0))
FULL = Config(sides=(4, 8, 16, 32, 64), seeds=8, steps=1000)


def subset_size(method: str, side: int) -> int:
    """k for a d = 4 side^2 problem: 1, d, sqrt d = 2 side, or side (a row of (4 side, side))."""
    d = 4 * side * side
    return {"coordinate": 1, "norm": d, "sqrt": 2 * side, "heuristic": side}[method]


def make_optimizer(params: list[torch.Tensor], lrs: tuple[float, ...], k: int, eps: float):
    """AdaGrad with subsets of k (no momentum, summed squares), one param group per lr."""
    groups = [{"params": [param], "lr": lr} for param, lr in zip(params, lrs)]
    return snsm.SNSM(groups, momentum="none", accumulator="sum", bias_correction=False,
                     subset_size=k, eps=eps)


def initial_point(d: int, runs: int, radius: float, gen: torch.Generator) -> torch.Tensor:
    """(runs, d): ACTIVE coordinates uniform in [-radius, radius], the rest in [-1, 1]/sqrt d.

    The active block is drawn first, so a seed gives it the same values at every d.
    """
    active = problems.uniform_init((runs, ACTIVE), radius, gen)
    rest = problems.uniform_init((runs, d - ACTIVE), 1.0, gen) / math.sqrt(d)
    return torch.cat([active, rest], dim=1)


def noisy_coordinates(d: int, beta: float, seed: int) -> torch.Tensor:
    """round(d^beta) coordinates (at least 1), drawn once per (seed, d, beta)."""
    count = max(1, min(d, round(d**beta)))
    gen = problems.generator(seed * 1_000_003 + d * 10 + round(10 * beta))
    return torch.randperm(d, generator=gen)[:count].sort().values


def average_grad_sq(method: str, side: int, beta: float, lrs: tuple[float, ...], cfg: Config,
                    seed: int) -> torch.Tensor:
    """(len(lrs), seeds): (1/T) sum_{t<T} ||grad f(x_t)||^2 of each run (inf if it diverged).

    Every lr sees the same x0 and the same noise draws (common random numbers).
    """
    d = 4 * side * side
    gen = problems.generator(seed)
    problem = problems.Separable(torch.ones(d))
    x = initial_point(d, cfg.seeds, cfg.radius, gen).expand(len(lrs), -1, -1).clone()
    params = list(x.unbind(0))
    optimizer = make_optimizer(params, lrs, subset_size(method, side), cfg.eps)
    where = noisy_coordinates(d, beta, seed)
    total = torch.zeros(len(lrs), cfg.seeds, dtype=torch.float64)
    for _ in range(cfg.steps):
        grad = problem.grad(x)
        total += grad.square().sum(-1)
        noise = problems.gaussian_noise((cfg.seeds, len(where)), cfg.sigma, gen)
        if len(where) == d:
            grad += noise
        else:
            grad.index_add_(-1, where, noise.expand(len(lrs), -1, -1))
        for param, g in zip(params, grad.unbind(0)):
            param.grad = g
        optimizer.step()
    return (total / cfg.steps).nan_to_num(math.inf, math.inf)


def medians(values: torch.Tensor) -> list[float]:
    """Median over seeds (the last dim) of each row."""
    return [float(v) for v in values.median(-1).values]


def best_index(scores: list[float]) -> int:
    return min(range(len(scores)), key=lambda i: (scores[i], i))


def study(method: str, beta: float, cfg: Config, seed: int) -> list[dict]:
    """One row per d: k, the frozen and the per-d tuned lr, and M at each (fresh seeds)."""
    tuned = [cfg.lrs[best_index(medians(average_grad_sq(method, side, beta, cfg.lrs, cfg,
                                                        seed)))] for side in cfg.sides]
    frozen = tuned[0]
    rows = []
    for side, lr in zip(cfg.sides, tuned):
        lrs = (frozen,) if lr == frozen else (frozen, lr)
        values = medians(average_grad_sq(method, side, beta, lrs, cfg, seed + 1))
        rows.append({"beta": beta, "method": method, "d": 4 * side * side,
                     "k": subset_size(method, side), "frozen_lr": frozen, "M_frozen": values[0],
                     "tuned_lr": lr, "M_tuned": values[-1],
                     "tuned_at_edge": lr in (cfg.lrs[0], cfg.lrs[-1])})
    return rows


def practice(rows: list[dict], beta: float, dims: list[int]) -> dict[str, float]:
    """SN's tuned M over the better / worse of AdaGrad and AdaGrad-Norm: last d, slope in d."""
    tuned = {(r["method"], r["d"]): r["M_tuned"] for r in rows if r["beta"] == beta}
    figure = {}
    for method in SUBSET_METHODS:
        ratio = [tuned[method, d] / min(tuned["coordinate", d], tuned["norm", d]) for d in dims]
        worst = tuned[method, dims[-1]] / max(tuned["coordinate", dims[-1]],
                                              tuned["norm", dims[-1]])
        for row in rows:
            if row["beta"] == beta and row["method"] == method:
                row["over_best"] = ratio[dims.index(row["d"])]
        figure |= {f"{label(beta)}_{method}_over_best_last": ratio[-1],
                   f"{label(beta)}_{method}_over_worst_last": worst,
                   f"{label(beta)}_{method}_over_best_exponent": loglog_slope(dims, ratio)}
    return figure


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    dims = [4 * s * s for s in cfg.sides]
    rows: list[dict] = []
    consistency, tuned_exponents, practice_figures = {}, {}, {}
    for beta in BETAS:
        for method in METHODS:
            found = study(method, beta, cfg, seed)
            rows += found
            key = f"{label(beta)}_{method}"
            consistency[f"{key}_exponent"] = loglog_slope(dims, [r["M_frozen"] for r in found])
            tuned_exponents[f"{key}_tuned_exponent"] = loglog_slope(
                dims, [r["M_tuned"] for r in found])
        practice_figures |= practice(rows, beta, dims)
    practice_figures["tuned_at_grid_edge"] = float(sum(r["tuned_at_edge"] for r in rows))
    figure = consistency | tuned_exponents | practice_figures
    questions = [
        Question("consistency", "with each lr tuned at the smallest d and held fixed, is every "
                 "measured exponent within its bound's exponent + TOL?", tuple(consistency)),
        Question("practice", "with each lr tuned at every d, where does SN fall between "
                 "AdaGrad and AdaGrad-Norm, and how does its ratio to the better move with d?",
                 tuple(tuned_exponents) + tuple(practice_figures))]
    result = Result(NAME, CLAIM, figure, EXPECTED, rows, questions=questions,
                    notes=f"T={cfg.steps}, {cfg.seeds} seeds (tuning and measuring on separate "
                          f"seeds), lr grid {[float(f'{lr:.3g}') for lr in cfg.lrs]}, "
                          f"TOL={TOL}; M = median over seeds of (1/T) sum_t ||grad f(x_t)||^2; "
                          "exponent b of M ~ C d^b; bounds are upper bounds, not predictions")
    return write_outputs(result, out, _plot(rows, dims, figure))


def _plot(rows, dims, figure):
    fig, axes = new_figure(ncols=len(BETAS))
    for ax, beta in zip(axes, BETAS):
        for i, method in enumerate(METHODS):
            mine = [r for r in rows if r["beta"] == beta and r["method"] == method]
            color = f"C{i}"
            b = figure[f"{label(beta)}_{method}_exponent"]
            bound = bound_exponent(method, beta)
            ax.loglog(dims, [r["M_frozen"] for r in mine], "o--", color=color,
                      label=f"{method} frozen lr: d^{b:.2f} (bound d^{bound:.2f})")
            ax.loglog(dims, [r["M_tuned"] for r in mine], "s-", color=color, alpha=0.6,
                      label=f"{method} tuned per d")
        ax.set(title=f"noise on d^{beta:g} coordinates", xlabel="d",
               ylabel="median (1/T) sum_t ||grad f||^2")
        ax.legend(fontsize=6)
    return fig
