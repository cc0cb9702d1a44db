"""``high-probability``: tails of SGD and AdaGrad-Norm, not just their means.

Liu, Nguyen, Nguyen, Ene, Nguyen (ICML 2023): for L-smooth non-convex f and
sub-Gaussian noise, SGD with a step tuned to T gives, with probability 1 - delta,

    (1/T) sum_t ||grad f(x_t)||^2 = O((1 + sigma^2 log(1/delta)) / T + sigma / sqrt T),

and AdaGrad-Norm converges with high probability with no bounded-gradient
assumption, at the same rate without knowing sigma (noise adaptation).

Problem: f(x) = sum_i psi(x_i) / 7 (``wavy``, L = 1), d = 10, x0 uniform in
[-3, 3]^d, Gaussian noise of total variance sigma^2 (sigma = 1) or none; one
(seeds, d) tensor holds every seed. SGD is the library's ``SNSM`` with no
momentum and no accumulator, step eta = min(1/L, sqrt(2 Delta / (L sigma^2 T)))
(Delta = E f(x0)); AdaGrad-Norm is ``AdaGradSN`` with beta1 = 0 and one subset per
seed (its row of d coordinates), lr 1 for every T and sigma (not tuned).

Figures: the slope in T of the (1 - delta) quantile (delta = 0.05) of the average
squared gradient norm, with and without noise; and the exponent of the quantile
in 1/delta at the largest T (logarithmic growth gives an exponent near 0;
Markov's inequality alone would allow 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import snsm
from snsm.lab import problems
from snsm.lab.fitting import loglog_slope, quantile
from snsm.lab.report import Result, new_figure, write_outputs

NAME = "high-probability"
CLAIM = ("the (1-delta) quantile of SGD's and AdaGrad-Norm's average ||grad f||^2 falls like "
         "T^-1/2 with noise and T^-1 without (AdaGrad-Norm untuned), and grows only "
         "logarithmically in 1/delta")
# Theory: sigma/sqrt(T) -> slope -1/2; noiseless 1/T -> slope -1; log(1/delta) growth -> a
# log-log exponent in 1/delta near 0 (Markov-only tails would give up to 1).
EXPECTED = {"sgd_noisy_slope": (-0.7, -0.3), "sgd_noiseless_slope": (-1.2, -0.8),
            "adagrad_norm_noisy_slope": (-0.7, -0.3),
            "adagrad_norm_noiseless_slope": (-1.2, -0.8),
            "sgd_delta_exponent": (0.0, 0.25)}
DELTAS = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
DELTA = 0.05
METHODS = ("sgd", "adagrad_norm")


@dataclass(frozen=True)
class Config:
    horizons: tuple[int, ...]
    seeds: int
    d: int = 10
    sigma: float = 1.0
    radius: float = 3.0
    adagrad_lr: float = 1.0


QUICK = Config(horizons=(200, 400, 800, 1600), seeds=1000)
FULL = Config(horizons=(100, 200, 400, 800, 1600, 3200), seeds=4000)


def make_problem(d: int) -> problems.Separable:
    return problems.Separable(torch.full((d,), 1.0 / problems.WAVY_SMOOTHNESS))


def sgd_step_size(horizon: int, sigma: float, delta_f: float, smoothness: float = 1.0) -> float:
    """eta = min(1/L, sqrt(2 Delta / (L sigma^2 T))): the step of the T-step analysis."""
    if sigma == 0:
        return 1.0 / smoothness
    return min(1.0 / smoothness, math.sqrt(2 * delta_f / (smoothness * sigma**2 * horizon)))


def average_grad_sq(method: str, horizons: tuple[int, ...], sigma: float, cfg: Config,
                    seed: int) -> dict[int, torch.Tensor]:
    """(1/T) sum_{t<T} ||grad f(x_t)||^2 per seed, for each T in ``horizons``, from one run.

    Only noisy SGD's step depends on T: give it a single horizon.
    """
    gen = problems.generator(seed)
    problem = make_problem(cfg.d)
    x = problems.uniform_init((cfg.seeds, cfg.d), cfg.radius, gen).requires_grad_()
    if method == "sgd":
        if sigma and len(horizons) != 1:
            raise ValueError(f"noisy SGD's step depends on T: one horizon, got {horizons}")
        delta_f = float(problem.value(x.detach()).mean())
        lr = sgd_step_size(horizons[0], sigma, delta_f)
        optimizer = snsm.SNSM([x], lr=lr, momentum="none", accumulator="none",
                              bias_correction=False)
    else:
        optimizer = snsm.AdaGradSN([x], lr=cfg.adagrad_lr, betas=(0.0, 0.999), eps=1e-8,
                                   subset_size=cfg.d)
    total = torch.zeros(cfg.seeds, dtype=torch.float64)
    std = sigma / math.sqrt(cfg.d)
    averages = {}
    for step in range(1, max(horizons) + 1):
        grad = problem.grad(x.detach())
        total += grad.square().sum(-1)
        if step in horizons:
            averages[step] = total / step
        x.grad = grad + problems.gaussian_noise(grad.shape, std, gen) if sigma else grad
        optimizer.step()
    return averages


def all_averages(method: str, sigma: float, cfg: Config, seed: int) -> dict[int, torch.Tensor]:
    if method == "sgd" and sigma:
        return {T: average_grad_sq(method, (T,), sigma, cfg, seed + T)[T] for T in cfg.horizons}
    return average_grad_sq(method, cfg.horizons, sigma, cfg, seed)


def run(quick: bool, out: Path, seed: int = 0) -> Result:
    cfg = QUICK if quick else FULL
    rows, curves, last = [], {}, {}
    for method in METHODS:
        for sigma in (cfg.sigma, 0.0):
            label = f"{method}_{'noisy' if sigma else 'noiseless'}"
            curves[label] = []
            for horizon, values in all_averages(method, sigma, cfg, seed).items():
                quantiles = {f"q{1 - delta:g}": quantile(values, 1 - delta) for delta in DELTAS}
                curves[label].append(quantiles[f"q{1 - DELTA:g}"])
                rows.append({"method": method, "sigma": sigma, "T": horizon, **quantiles})
                last[label] = quantiles
    figure = {f"{label}_slope": loglog_slope(cfg.horizons, values)
              for label, values in curves.items()}
    tail = [last["sgd_noisy"][f"q{1 - delta:g}"] for delta in DELTAS]
    figure["sgd_delta_exponent"] = loglog_slope([1 / delta for delta in DELTAS], tail)
    figure["sgd_q99_over_median"] = tail[-1] / tail[0]
    result = Result(NAME, CLAIM, figure, EXPECTED, rows,
                    notes=f"{cfg.seeds} seeds, d={cfg.d}, sigma={cfg.sigma}; slopes of the "
                          f"{1 - DELTA:g}-quantile in T; delta exponent at T={cfg.horizons[-1]}")
    return write_outputs(result, out, _plot(cfg, curves, figure, tail))


def _plot(cfg, curves, figure, tail):
    fig, (left, right) = new_figure(ncols=2)
    for label, values in curves.items():
        left.loglog(cfg.horizons, values, "o-", label=f"{label} (T^{figure[label + '_slope']:.2f})")
    left.set(xlabel="T", ylabel=f"{1 - DELTA:g}-quantile of avg ||grad f||^2")
    left.legend(fontsize=8)
    right.semilogx([1 / delta for delta in DELTAS], tail, "o-")
    right.set(xlabel="1/delta", ylabel="(1-delta)-quantile, SGD with noise",
              title=f"T={cfg.horizons[-1]}: exponent {figure['sgd_delta_exponent']:.2f} in 1/delta")
    return fig
