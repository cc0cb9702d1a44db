"""high-probability: rates of the quantiles in T and their growth in 1/delta."""

from __future__ import annotations

import pytest

from snsm.lab import high_probability as exp


def test_quick_quantile_rates(figure):
    fig = figure("high-probability")
    for method in ("sgd", "adagrad_norm"):
        assert -0.7 <= fig[f"{method}_noisy_slope"] <= -0.3  # sigma / sqrt T
        assert -1.2 <= fig[f"{method}_noiseless_slope"] <= -0.8  # 1 / T
    assert 0.0 <= fig["sgd_delta_exponent"] <= 0.25  # log(1/delta), not 1/delta
    assert 1.0 < fig["sgd_q99_over_median"] < 3.0


def test_noisy_sgd_needs_its_horizon():
    with pytest.raises(ValueError, match="one horizon"):
        exp.average_grad_sq("sgd", (10, 20), 1.0, exp.QUICK, 0)


def test_step_size_of_the_analysis():
    assert exp.sgd_step_size(100, 0.0, 5.0) == 1.0
    assert exp.sgd_step_size(400, 1.0, 2.0) == pytest.approx(0.1)
