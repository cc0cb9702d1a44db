"""``heavy-tails``: SGD under sub-Weibull noise, and picking one iterate with a guarantee.

Madden, Dall'Anese, Becker: high-probability bounds for non-convex SGD under
sub-Gaussian and heavier-tailed sub-Weibull(theta) noise (the log(1/delta) factor
grows with theta), with a post-processing step that returns one iterate.

Part A (tails widen): f(x) = sum_i phi(x_i) / 8 (``pl``: non-convex,
Polyak-Lojasiewicz, L = 1), d = 4, x0 uniform in [-3, 3]^d, SGD (the library's
``SNSM`` with no momentum and no accumulator) with eta_t = 0.5 t0 / (t + t0),
noise of std 0.5 per coordinate and tail parameter theta (``sub_weibull_noise``).
Measure: quantiles of f(x_T) - f* over seeds; spread = q_0.99 / q_0.5.

Part B (selection): f = sum_i psi(x_i) / 7 (``wavy``, non-convex, L = 1), SGD at
eta = 0.1 for T steps; the usual guarantee is in expectation for an iterate x_R,
R uniform. Selection: K = ceil(log2(1/delta)) independent runs give K candidates
x_R; each candidate's gradient is estimated from N fresh stochastic gradients and
the smallest estimate wins. Success: ||grad f(x_sel)||^2 <= 2 B, B the mean of
||grad f(x_R)||^2 over all candidates (Markov: one candidate fails with probability
<= 1/2, all K fail with probability <= 2^-K <= delta; estimation errors cost the rest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import snsm
from snsm_workbench.lab import problems
from snsm_workbench.lab.fitting import quantile
from snsm_workbench.lab.report import Result, new_figure, write_outputs

NAME = "heavy-tails"
CLAIM = ("SGD's high quantiles widen as the noise tail parameter theta grows; selecting the "
         "candidate with the smallest estimated gradient among K = log2(1/delta) runs meets "
         "||grad f||^2 <= 2 E||grad f(x_R)||^2 with probability >= 1 - delta")
DELTA = 0.05
THETAS = (0.5, 1.0, 2.0, 3.0)
QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Config:
    pl_seeds: int
    pl_steps: int
    trials: int
    select_steps: int = 100
    samples: int = 32
    d: int = 4
    sigma: float = 0.5
    radius: float = 3.0


QUICK = Config(pl_seeds=4000, pl_steps=300, trials=1000)
FULL = Config(pl_seeds=20000, pl_steps=1000, trials=4000)


def expected(cfg: Config) -> dict:
    """Widening: the 0.99/0.5 spread at theta = 3 at least 1.2x that at theta = 1/2.
    Selection: failure <= delta, plus 3 binomial standard errors for the finite trials."""
    allowance = 3 * math.sqrt(DELTA * (1 - DELTA) / cfg.trials)
    return {"spread_widening": (1.2, None),
            "selection_failure_max": (0.0, round(DELTA + allowance, 4))}


def sgd(x: torch.Tensor, lr: float) -> snsm.SNSM:
    return snsm.SNSM([x], lr=lr, momentum="none", accumulator="none", bias_correction=False)


def noise(shape, theta: float, sigma: float, gen: torch.Generator) -> torch.Tensor:
    return sigma * problems.sub_weibull_noise(shape, theta, gen)


def pl_final_gaps(theta: float, cfg: Config, seed: int, t0: float = 50.0) -> torch.Tensor:
    """f(x_T) - f* per seed under a decaying step eta_t = 0.5 t0 / (t + t0)."""
    gen = problems.generator(seed)
    problem = problems.Separable(torch.full((cfg.d,), 1.0 / problems.PL_SMOOTHNESS), "pl")
    x = problems.uniform_init((cfg.pl_seeds, cfg.d), cfg.radius, gen).requires_grad_()
    optimizer = sgd(x, 0.5)
    for t in range(cfg.pl_steps):
        optimizer.param_groups[0]["lr"] = 0.5 * t0 / (t + t0)
        x.grad = problem.grad(x.detach()) + noise(x.shape, theta, cfg.sigma, gen)
        optimizer.step()
    return problem.value(x.detach())


def selection(theta: float, cfg: Config, seed: int) -> dict[str, float]:
    """Failure rates of one random iterate and of the selected one."""
    k = math.ceil(math.log2(1 / DELTA))
    gen = problems.generator(seed)
    problem = problems.Separable(torch.full((cfg.d,), 1.0 / problems.WAVY_SMOOTHNESS))
    rows = cfg.trials * k
    x = problems.uniform_init((rows, cfg.d), cfg.radius, gen).requires_grad_()
    stop = torch.randint(0, cfg.select_steps, (rows,), generator=gen)
    candidates = x.detach().clone()
    optimizer = sgd(x, 0.1)
    for t in range(cfg.select_steps):
        candidates[stop == t] = x.detach()[stop == t]
        x.grad = problem.grad(x.detach()) + noise(x.shape, theta, cfg.sigma, gen)
        optimizer.step()
    true_sq = problem.grad(candidates).square().sum(-1).view(cfg.trials, k)
    fresh = noise((cfg.samples, rows, cfg.d), theta, cfg.sigma, gen).mean(0)
    estimate = (problem.grad(candidates) + fresh).square().sum(-1).view(cfg.trials, k)
    chosen = true_sq.gather(1, estimate.argmin(1, keepdim=True)).squeeze(1)
    threshold = 2 * true_sq.mean()
    return {"single_failure": float((true_sq[:, 0] > threshold).double().mean()),
            "selected_failure": float((chosen > threshold).double().mean()),
            "candidates": k}


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    rows, spreads = [], {}
    for i, theta in enumerate(THETAS):
        gaps = pl_final_gaps(theta, cfg, seed + i)
        qs = {f"gap_q{q:g}": quantile(gaps, q) for q in QUANTILES}
        spreads[theta] = qs["gap_q0.99"] / qs["gap_q0.5"]
        rows.append({"theta": theta, **qs, "spread_q99_q50": spreads[theta],
                     **selection(theta, cfg, seed + 100 + i)})
    figure = {"spread_widening": spreads[THETAS[-1]] / spreads[THETAS[0]],
              "selection_failure_max": max(r["selected_failure"] for r in rows),
              "single_failure_min": min(r["single_failure"] for r in rows)}
    result = Result(NAME, CLAIM, figure, expected(cfg), rows,
                    notes=f"part A: {cfg.pl_seeds} seeds, T={cfg.pl_steps}; part B: "
                          f"{cfg.trials} trials, delta={DELTA}, T={cfg.select_steps}, "
                          f"N={cfg.samples} fresh samples per candidate")
    return write_outputs(result, out, _plot(rows))


def _plot(rows):
    fig, (left, right) = new_figure(ncols=2)
    thetas = [r["theta"] for r in rows]
    for q in QUANTILES:
        left.semilogy(thetas, [r[f"gap_q{q:g}"] for r in rows], "o-", label=f"q{q:g}")
    left.set(xlabel="tail parameter theta", ylabel="f(x_T) - f*", title="PL problem, SGD")
    left.legend()
    right.plot(thetas, [r["single_failure"] for r in rows], "o-", label="one random iterate")
    right.plot(thetas, [r["selected_failure"] for r in rows], "s-", label="selected of K")
    right.axhline(DELTA, color="gray", linestyle="--", label=f"delta = {DELTA}")
    right.set(xlabel="tail parameter theta", ylabel="P(||grad f||^2 > 2 E)",
              title="selection by estimated gradient")
    right.legend()
    return fig
