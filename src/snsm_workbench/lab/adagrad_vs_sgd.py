"""``adagrad-vs-sgd``: AdaGrad's l1-stationarity gain over SGD (Jiang, Maladkar, Mokhtari 2025).

Under coordinate-wise smoothness L_i and noise sigma_i, measured by ||grad f||_1,
SGD's iteration complexity scales with d ||L||_inf, AdaGrad's with ||L||_1, so
when ||L||_1 ~ ||L||_inf and ||sigma||_1 ~ ||sigma||_2 (a few coordinates carry
the large smoothness and the noise) AdaGrad can win by a factor of d.

Problem: f(x) = sum_i s_i psi(x_i), psi the non-convex ``wavy`` function, s = 1
on 2 coordinates and 1/d on the other d - 2 (so ||L||_1 ~ 3 ||L||_inf), Gaussian
noise of std 0.5 on the 2 stiff coordinates only, x0 uniform in [-3, 3]^d.

Measure: iterations until ||grad f(x_t)||_1 <= eps, the median over seeds, for
the best step size of a grid per method and d (both tuned the same way).
``snsm.AdaGrad`` against SGD as the library's ``SNSM`` with no momentum and no
accumulator (p <- p - lr g), one param group per learning rate.
Figure: the exponent of d in T_SGD / T_AdaGrad (theory: up to 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import snsm
from snsm_workbench.lab import problems
from snsm_workbench.lab.fitting import loglog_slope
from snsm_workbench.lab.report import Result, new_figure, write_outputs

NAME = "adagrad-vs-sgd"
CLAIM = ("with smoothness and noise concentrated on a few coordinates, AdaGrad needs about d "
         "times fewer iterations than SGD to reach ||grad f||_1 <= eps (both step sizes tuned)")
# Theory: the ratio can grow like d (exponent 1); allow +-0.5 for fit and tuning-grid noise.
EXPECTED = {"ratio_exponent": (0.5, 1.5)}
STIFF = 2


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...]
    seeds: int
    sgd_lrs: tuple[float, ...] = (0.28, 0.2, 0.1, 0.05, 0.025, 0.0125)
    adagrad_lrs: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
    eps: float = 0.25
    sigma: float = 0.5
    radius: float = 3.0
    max_steps_per_d: int = 200


QUICK = Config(dims=(8, 16, 32, 64), seeds=8)
FULL = Config(dims=(8, 16, 32, 64, 128, 256), seeds=16)


def make_problem(d: int) -> problems.Separable:
    scale = torch.full((d,), 1.0 / d)
    scale[:STIFF] = 1.0
    return problems.Separable(scale)


def make_optimizer(method: str, params: list[torch.Tensor], lrs: tuple[float, ...]):
    """``adagrad`` (per coordinate), ``adagrad_norm`` (one step size per run: AdaGradSN
    without momentum, one subset per row) or ``sgd``; one param group per lr."""
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if method == "adagrad":
        return snsm.AdaGrad(groups, lr=lrs[0], eps=1e-8)
    if method == "adagrad_norm":
        return snsm.AdaGradSN(groups, lr=lrs[0], betas=(0.0, 0.999), eps=1e-8,
                              subset_size=params[0].shape[-1])
    return snsm.SNSM(groups, lr=lrs[0], momentum="none", accumulator="none",
                     bias_correction=False)


def iterations_to_eps(method: str, d: int, cfg: Config, seed: int) -> tuple[float, float]:
    """(median first-hit iteration at the best lr, that lr); NaN when no lr gets there.

    The best lr's median hit is the first time any lr group has a majority of hits,
    so the run stops there.
    """
    lrs = cfg.sgd_lrs if method == "sgd" else cfg.adagrad_lrs
    gen = problems.generator(seed)
    problem = make_problem(d)
    x0 = problems.uniform_init((cfg.seeds, d), cfg.radius, gen)
    params = [x0.clone().requires_grad_() for _ in lrs]
    optimizer = make_optimizer(method, params, lrs)
    std = torch.zeros(d)
    std[:STIFF] = cfg.sigma
    majority = cfg.seeds // 2 + 1
    hits = torch.zeros(len(lrs), cfg.seeds, dtype=torch.bool)
    for step in range(cfg.max_steps_per_d * d):
        for g, param in enumerate(params):
            grad = problem.grad(param.detach())
            hits[g] |= grad.abs().sum(-1) <= cfg.eps
            param.grad = grad + problems.gaussian_noise(grad.shape, std, gen)
        counts = hits.sum(-1)
        if counts.max() >= majority:
            return float(step), lrs[int(counts.argmax())]
        optimizer.step()
    return math.nan, math.nan


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    rows, curves = [], {"sgd": [], "adagrad": []}
    for d in cfg.dims:
        row = {"d": d}
        for method in ("sgd", "adagrad"):
            steps, lr = iterations_to_eps(method, d, cfg, seed + d)
            curves[method].append(steps)
            row.update({f"{method}_iters": steps, f"{method}_lr": lr})
        row["ratio"] = row["sgd_iters"] / row["adagrad_iters"]
        rows.append(row)
    figure = {"ratio_exponent": loglog_slope(cfg.dims, [r["ratio"] for r in rows]),
              "sgd_exponent": loglog_slope(cfg.dims, curves["sgd"]),
              "adagrad_exponent": loglog_slope(cfg.dims, curves["adagrad"])}
    result = Result(NAME, CLAIM, figure, EXPECTED, rows,
                    notes=f"eps={cfg.eps} on ||grad f||_1, {cfg.seeds} seeds, median first hit, "
                          f"best of SGD lrs {list(cfg.sgd_lrs)} and AdaGrad lrs "
                          f"{list(cfg.adagrad_lrs)} per d")
    return write_outputs(result, out, _plot(cfg.dims, curves, figure))


def _plot(dims, curves, figure):
    fig, (ax,) = new_figure()
    for method, values in curves.items():
        ax.loglog(dims, values, "o-", label=f"{method} (d^{figure[f'{method}_exponent']:.2f})")
    ax.set(xlabel="d", ylabel="median iterations to ||grad f||_1 <= eps",
           title=f"T_SGD / T_AdaGrad ~ d^{figure['ratio_exponent']:.2f}")
    ax.legend()
    return fig
