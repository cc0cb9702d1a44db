"""Statistics over seeds: mean curves, interpolated steps-to-target, t intervals (paired, Welch,
single-case, log ratio) and the Student t quantile they use; a simulation of their coverage."""

import math
import statistics

import numpy as np
import pytest

from snsm_workbench.bench.statistics import (difference_interval, log_ratio_interval,
                                             mean_curve, mean_interval, mean_sd,
                                             paired_interval, steps_to_target,
                                             welch_from_summary, welch_interval)
from snsm_workbench.bench.student_t import regularized_beta, t_cdf, t_quantile


def test_steps_to_target_interpolates_between_evaluations():
    # 4.0 at step 100, 3.0 at step 200: 3.25 is reached three quarters of the way.
    assert steps_to_target([0, 100, 200], [5.0, 4.0, 3.0], 3.25) == pytest.approx(175.0)
    assert steps_to_target([0, 100, 200], [5.0, 4.0, 3.0], 4.0) == 100.0  # exactly at an eval
    assert steps_to_target([0, 100], [5.0, 4.0], 3.9) is None  # never reached
    assert steps_to_target([0, 100, 200], [5.0, float("nan"), 3.0], 3.5) == 200.0


def test_mean_sd_uses_the_sample_deviation_and_refuses_nothing():
    assert mean_sd([1.0, 3.0]) == (2.0, statistics.stdev([1.0, 3.0]))
    assert mean_sd([2.5]) == (2.5, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_sd([])


def test_mean_curve_averages_the_steps_every_curve_has():
    steps, losses = mean_curve([{0: 4.0, 50: 3.0, 100: 2.0}, {0: 6.0, 100: 4.0}])
    assert steps == [0, 100] and losses == [5.0, 3.0]
    assert mean_curve([]) == ([], [])


# -- the Student t quantile ------------------------------------------------------------------
@pytest.mark.parametrize("df, expected", [(1, 12.706205), (2, 4.302653), (3, 3.182446),
                                          (4, 2.776445), (10, 2.228139), (30, 2.042272)])
def test_t_quantile_matches_the_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


def test_t_quantile_matches_closed_forms_and_the_normal_limit():
    for p in (0.6, 0.9, 0.975, 0.995):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)),
                                                 rel=1e-9)
        assert t_quantile(1 - p, 3.7) == -t_quantile(p, 3.7)  # symmetric, fractional df
        assert t_cdf(t_quantile(p, 3.7), 3.7) == pytest.approx(p, abs=1e-12)
    assert t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.5, 5) == 0.0
    assert regularized_beta(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-12)  # 1-(.6^4+4*.4*.6^3)
    with pytest.raises(ValueError, match="p in"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile(0.9, 0)


# -- the intervals ----------------------------------------------------------------------------
def test_paired_interval_is_the_t_interval_of_the_differences():
    a, b = [1.0, 2.0, 3.5], [0.5, 1.0, 2.0]  # differences 0.5, 1.0, 1.5
    ci = paired_interval(a, b)
    assert ci.design == "paired" and ci.df == 2 and ci.estimate == pytest.approx(1.0)
    half = 4.302653 * 0.5 / math.sqrt(3)
    assert ci.bounds == pytest.approx((1.0 - half, 1.0 + half), abs=1e-6)
    assert not ci.excludes(0) and ci.excludes(2.5)  # p = 0.074: a lead, not an advantage
    assert ci.p == pytest.approx(2 * (1 - t_cdf(1.0 / (0.5 / math.sqrt(3)), 2)))
    with pytest.raises(ValueError, match="equal-length"):
        paired_interval([1.0, 2.0], [1.0])


def test_welch_interval_uses_the_welch_satterthwaite_df():
    a, b = [1.0, 1.2, 0.9, 1.1], [2.0, 2.6, 1.4]
    va, vb = statistics.variance(a) / 4, statistics.variance(b) / 3
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    ci = welch_interval(a, b)
    assert ci.design == "welch" and ci.df == pytest.approx(df)
    assert 2 < ci.df < 5  # between the smaller arm's n - 1 and n_a + n_b - 2
    delta = statistics.fmean(a) - statistics.fmean(b)
    half = t_quantile(0.975, df) * math.sqrt(va + vb)
    assert ci.bounds == pytest.approx((delta - half, delta + half))


def test_one_seed_against_several_is_the_single_case_test():
    ci = welch_from_summary(5.0, 0.0, 1, 4.0, 0.3, 3)
    assert ci.design == "single" and ci.df == 2
    half = 4.302653 * 0.3 * math.sqrt(1 + 1 / 3)
    assert ci.bounds == pytest.approx((1.0 - half, 1.0 + half), abs=1e-6)
    with pytest.raises(ValueError, match="2\\+ values"):
        welch_from_summary(1.0, 0.0, 1, 2.0, 0.0, 1)


def test_difference_interval_pairs_by_seed_only_when_the_seeds_match():
    a, b = {0: 1.0, 1: 1.4, 2: 1.1}, {0: 0.8, 1: 1.3, 2: 0.8}
    assert difference_interval(a, b).design == "paired"
    assert difference_interval({0: 1.0, 1: 1.4, 5: 1.1}, b).design == "welch"
    assert difference_interval({0: 1.5}, b).design == "single"
    assert difference_interval({0: 1.5}, {0: 1.0}).design == "none"


def test_log_ratio_interval_is_the_paired_interval_of_the_logs():
    ratios = [0.7, 0.75, 0.68]
    ci = log_ratio_interval(ratios)
    logs = paired_interval([math.log(r) for r in ratios], [0.0] * 3)
    assert ci.estimate == pytest.approx(math.exp(statistics.fmean(map(math.log, ratios))))
    assert ci.bounds == pytest.approx((math.exp(logs.low), math.exp(logs.high)))
    assert ci.high < 1
    assert log_ratio_interval([0.7, math.inf, 0.8]).bounds == (0.0, math.inf)
    assert log_ratio_interval([math.inf]).bounds == (math.inf, math.inf)
    assert log_ratio_interval([0.9]).bounds == (0.0, math.inf)  # one pair: no interval


# -- coverage at 3 seeds: the t intervals hold 95%, the old bootstrap did not ------------------
DRAWS = 4000


def _coverage(interval, rng, paired: bool) -> float:
    """The share of ``DRAWS`` 95% intervals of mean(a) - mean(b) (true value 0.3) that cover it:
    3 seeds per arm; paired: a shared seed effect (sd 1) plus noise; else unequal sds."""
    covered = 0
    for _ in range(DRAWS):
        if paired:
            seed_effect = rng.normal(0.0, 1.0, 3)
            a = seed_effect + 0.3 + rng.normal(0.0, 0.5, 3)
            b = seed_effect + rng.normal(0.0, 0.5, 3)
        else:
            a, b = rng.normal(0.3, 1.0, 3), rng.normal(0.0, 2.0, 3)
        low, high = interval(a.tolist(), b.tolist())
        covered += low <= 0.3 <= high
    return covered / DRAWS


def test_the_t_intervals_cover_at_least_93_percent_at_3_seeds():
    rng = np.random.Generator(np.random.PCG64(2026))
    paired = _coverage(lambda a, b: paired_interval(a, b).bounds, rng, paired=True)
    welch = _coverage(lambda a, b: welch_interval(a, b).bounds, rng, paired=False)
    assert paired >= 0.93 and welch >= 0.93, (paired, welch)
    single = 0
    for _ in range(DRAWS):  # one seed against three, equal sds: the single-case test
        x, b = rng.normal(0.3, 1.0), rng.normal(0.0, 1.0, 3)
        ci = welch_from_summary(x, 0.0, 1, *mean_sd(b.tolist()), 3)
        single += ci.low <= 0.3 <= ci.high
    assert single / DRAWS >= 0.93


def _old_bootstrap(a, b, rng, samples=1000):
    """The interval these replace: percentiles of mean(a*) - mean(b*), each arm's seeds
    resampled with replacement independently (vectorized here, same definition)."""
    a, b = np.asarray(a), np.asarray(b)
    stats = (rng.choice(a, (samples, a.size)).mean(1) - rng.choice(b, (samples, b.size)).mean(1))
    return tuple(np.quantile(stats, [0.025, 0.975]))


def test_the_old_bootstrap_covered_only_about_79_percent():
    rng = np.random.Generator(np.random.PCG64(79))
    old = _coverage(lambda a, b: _old_bootstrap(a, b, rng), rng, paired=False)
    assert 0.72 < old < 0.85, old


def test_mean_interval_is_the_one_sample_t_interval():
    ci = mean_interval([3.89, 3.91, 3.935])
    mean, sd = mean_sd([3.89, 3.91, 3.935])
    assert ci.high == pytest.approx(mean + 4.302653 * sd / math.sqrt(3), abs=1e-6)
