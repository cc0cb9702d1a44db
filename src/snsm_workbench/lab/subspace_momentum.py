"""``subspace-momentum``: SGD, full EMA momentum and Subspace-Momentum (SGD-SM).

Problem: a 64 x 32 weight W, f(W) = sum_ij h_j psi(W_ij) / 7 (``wavy``,
non-convex), with h_j = 10 on 4 stiff columns and 0.1 elsewhere (L = 10, condition
100), W0 uniform in [-3, 3], Gaussian gradient noise of std 0.01 per entry.

SGD's step must stay below 2/L for the stiff columns; EMA momentum
m <- b m + (1 - b) g, W <- W - lr m (b = 0.9) is stable up to 2 (1 + b) / ((1 - b) L),
19x more, so a larger step moves the flat columns faster. Subspace-Momentum keeps
momentum only in a rank-r subspace from the gradient (refreshed every 20 steps)
and plain SGD in its complement: it reaches momentum's larger step when the
subspace holds the stiff directions (svd / rsvd at r >= 4), and stays near SGD when
it does not (random subspaces, row-index projectors on a column structure).

Each optimizer is the library's: SGD = ``SNSM(momentum="none", accumulator="none")``,
full momentum = ``SNSM(momentum="ema", accumulator="none")``, SM = ``snsm.SGDSM``.
Measure: mean ||grad f||_F^2 over the last 20 of T steps, median over seeds, at the
best lr of a grid per method; and at lr = 1/L, the step of the smooth analysis.
gap_closed = (log g_SGD - log g_SM) / (log g_SGD - log g_momentum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import snsm
from snsm_workbench.lab import problems
from snsm_workbench.lab.report import Result, new_figure, write_outputs

NAME = "subspace-momentum"
CLAIM = ("tuned, SGD-SM lies between SGD and full momentum and closes the gap as its rank "
         "grows (svd); at lr = 1/L every SM variant converges like SGD")
# "between": gap_closed within [0, 1] give or take 0.25 of fit/noise; "closes the gap":
# full rank within 0.25 of momentum and at least 0.25 above rank 1; "converges like SGD":
# final gradient at lr = 1/L at most 2x SGD's.
EXPECTED = {"gap_closed_min": (-0.25, None), "gap_closed_max": (None, 1.25),
            "gap_closed_full_rank": (0.75, 1.25), "full_minus_rank1": (0.25, None),
            "safe_lr_worst_ratio": (0.0, 2.0)}
STIFF, STIFFNESS, FLATNESS = 4, 10.0, 0.1
DIVERGED = 1e6  # a run with |W_ij| (or a final ||grad f||^2) above this has diverged


@dataclass(frozen=True)
class Config:
    ranks: tuple[int, ...]
    projectors: tuple[str, ...]
    seeds: int
    steps: int = 200
    lrs: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
    shape: tuple[int, int] = (64, 32)
    sigma: float = 0.01
    update_gap: int = 20
    projector_rank: int = 8
    tail: int = 20


QUICK = Config(ranks=(1, 4, 32), projectors=("gaussian", "uniform"), seeds=2)
FULL = Config(ranks=(1, 2, 4, 8, 16, 32), projectors=("rsvd", "gaussian", "srht", "uniform",
                                                      "topk"), seeds=4, steps=300)


def make_problem(n: int) -> problems.Separable:
    scale = torch.full((n,), FLATNESS / problems.WAVY_SMOOTHNESS)
    scale[:STIFF] = STIFFNESS / problems.WAVY_SMOOTHNESS
    return problems.Separable(scale)


def make_optimizer(method: str, params, lr: float, cfg: Config, rank: int = 0,
                   projector: str = "svd"):
    if method == "sgd":
        return snsm.SNSM(params, lr=lr, momentum="none", accumulator="none",
                         bias_correction=False)
    if method == "momentum":
        return snsm.SNSM(params, lr=lr, betas=(0.9, 0.999), momentum="ema", accumulator="none",
                         bias_correction=False)
    return snsm.SGDSM(params, lr=lr, betas=(0.9, 0.999), rank=rank, projector=projector,
                      update_gap=cfg.update_gap)


def final_grad_sq(method: str, lr: float, cfg: Config, seed: int, rank: int = 0,
                  projector: str = "svd") -> tuple[float, int]:
    """(median over seeds of the tail-mean ||grad f||_F^2, optimizer-state bytes)."""
    gen = problems.generator(seed)
    problem = make_problem(cfg.shape[1])
    params = [problems.uniform_init(cfg.shape, 3.0, gen).requires_grad_()
              for _ in range(cfg.seeds)]
    optimizer = make_optimizer(method, params, lr, cfg, rank, projector)
    tail = torch.zeros(cfg.seeds, dtype=torch.float64)
    for step in range(cfg.steps):
        for i, param in enumerate(params):
            grad = problem.grad(param.detach())
            if step >= cfg.steps - cfg.tail:
                tail[i] += grad.square().sum() / cfg.tail
            param.grad = grad + problems.gaussian_noise(grad.shape, cfg.sigma, gen)
        if not all(bool(p.detach().abs().max() < DIVERGED) for p in params):  # NaN too
            return math.inf, snsm.state_bytes(optimizer)
        optimizer.step()
    return float(tail.nan_to_num(math.inf).median()), snsm.state_bytes(optimizer)


def configurations(cfg: Config) -> list[tuple[str, str, int, str]]:
    """(label, method, rank, projector) for every optimizer compared."""
    configs = [("sgd", "sgd", 0, ""), ("momentum", "momentum", 0, "")]
    configs += [(f"sm-svd-r{r}", "sm", r, "svd") for r in cfg.ranks]
    configs += [(f"sm-{p}-r{cfg.projector_rank}", "sm", cfg.projector_rank, p)
                for p in cfg.projectors]
    return configs


def gap_closed(g_sm: float, g_sgd: float, g_momentum: float) -> float:
    return (math.log(g_sgd) - math.log(g_sm)) / (math.log(g_sgd) - math.log(g_momentum))


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    safe_lr = 1.0 / STIFFNESS
    rows, best = [], {}
    for label, method, rank, projector in configurations(cfg):
        scores = {lr: final_grad_sq(method, lr, cfg, seed, rank, projector) for lr in cfg.lrs}
        lr = min(scores, key=lambda k: scores[k][0])
        best[label] = scores[lr][0]
        rows.append({"optimizer": label, "rank": rank or "", "best_lr": lr,
                     "grad_sq_best_lr": scores[lr][0], "grad_sq_lr_1/L": scores[safe_lr][0],
                     "state_bytes": scores[lr][1], "curve": [scores[k][0] for k in cfg.lrs]})
    for row in rows:
        row["gap_closed"] = gap_closed(row["grad_sq_best_lr"], best["sgd"], best["momentum"])
    sm_rows = [r for r in rows if r["optimizer"].startswith("sm-")]
    svd = {r["rank"]: r["gap_closed"] for r in sm_rows if r["optimizer"].startswith("sm-svd")}
    safe_sgd = rows[0]["grad_sq_lr_1/L"]
    figure = {"gap_closed_min": min(r["gap_closed"] for r in sm_rows),
              "gap_closed_max": max(r["gap_closed"] for r in sm_rows),
              "gap_closed_full_rank": svd[max(svd)],
              "full_minus_rank1": svd[max(svd)] - svd[min(svd)],
              "safe_lr_worst_ratio": max(r["grad_sq_lr_1/L"] for r in sm_rows) / safe_sgd}
    curves = {r["optimizer"]: r.pop("curve") for r in rows}
    result = Result(NAME, CLAIM, figure, EXPECTED, rows,
                    notes=f"W {cfg.shape}, T={cfg.steps}, {cfg.seeds} seeds, lrs {list(cfg.lrs)},"
                          f" update_gap={cfg.update_gap}; state bytes by snsm.state_bytes "
                          "(projector state included)")
    return write_outputs(result, out, _plot(cfg, rows, curves))


def _plot(cfg, rows, curves):
    fig, (left, right) = new_figure(ncols=2)
    for label, values in curves.items():
        style = "o-" if label in ("sgd", "momentum") else ("s--" if "svd-r" in label else "^:")
        left.loglog(cfg.lrs, [v if v < DIVERGED else math.nan for v in values], style,
                    label=label, linewidth=2.5 if label in ("sgd", "momentum") else 1.2)
    left.set(xlabel="lr", ylabel="final ||grad f||_F^2 (median)", title="lr sweep")
    left.legend(fontsize=7)
    for row in rows:
        right.scatter(row["state_bytes"], row["grad_sq_best_lr"])
        right.annotate(row["optimizer"], (row["state_bytes"], row["grad_sq_best_lr"]), fontsize=7)
    right.set(xscale="log", yscale="log", xlabel="optimizer state bytes",
              ylabel="final ||grad f||_F^2 at best lr", title="memory vs stationarity")
    return fig
