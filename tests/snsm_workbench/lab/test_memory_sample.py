"""memory-sample: d samples with quadratic memory; ~2 d ln(1/eps) with linear memory."""

from __future__ import annotations

import torch

from snsm_workbench.lab import memory_sample as exp
from snsm_workbench.lab.fitting import median_or_nan


def test_quick_samples(figure):
    fig = figure("memory-sample")
    assert 1.5 <= fig["kaczmarz_slope"] <= 2.5
    assert 1.5 <= fig["sgd_slope_d100"] <= 2.5
    assert 1.0 <= fig["lstsq_samples_over_d_max"] <= 1.25


def test_noiseless_least_squares_is_exact_after_d_samples():
    gen = torch.Generator().manual_seed(0)
    x, a, b = exp.stream(20, 4, 40, gen)
    b = (a * x).sum(-1)  # no noise
    hits = exp.samples_to_eps("lstsq", x, a, b, (1e-8,))
    assert hits.tolist() == [[20] * 4]


def test_targets_stay_above_the_noise_level():
    assert exp.reachable((1e-1, 1e-4, 1e-5), 100) == (1e-1, 1e-4)
    gen = torch.Generator().manual_seed(0)
    x, a, b = exp.stream(30, 5, 10 * 30, gen)
    hits = exp.samples_to_eps("kaczmarz", x, a, b, (1e-1,))
    assert 30 < median_or_nan(hits[0]) < 10 * 30
