"""adagrad-vs-sgd: the l1 gain grows like d; a single step size (AdaGrad-Norm) loses it."""

from __future__ import annotations

import math

from snsm_workbench.lab import adagrad_vs_sgd as exp
from snsm_workbench.lab.fitting import loglog_slope


def test_quick_ratio_grows_about_linearly_in_d(figure):
    fig = figure("adagrad-vs-sgd")
    assert 0.5 <= fig["ratio_exponent"] <= 1.5
    assert 0.5 <= fig["sgd_exponent"] <= 1.5  # SGD's step is capped by the stiff coordinates
    assert -0.3 <= fig["adagrad_exponent"] <= 0.3  # per-coordinate steps: about d-free


def test_one_shared_step_size_loses_the_gain():
    """AdaGrad-Norm (one step size per run, as in SGD) must pay ~d like SGD: the experiment
    tells per-coordinate adaptivity apart from adaptivity alone."""
    cfg = exp.Config(dims=(8, 32), seeds=8, adagrad_lrs=(0.3, 1.0, 3.0, 10.0, 30.0))
    steps = [exp.iterations_to_eps("adagrad_norm", d, cfg, seed=d)[0] for d in cfg.dims]
    assert all(math.isfinite(s) for s in steps)
    assert loglog_slope(cfg.dims, steps) >= 0.5
