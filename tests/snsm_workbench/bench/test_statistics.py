"""Statistics over seeds: mean curves, interpolated steps-to-target, seeded bootstrap intervals."""

import random
import statistics

import pytest

from snsm_workbench.bench.statistics import bootstrap_interval, mean_curve, mean_sd, steps_to_target


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


def test_bootstrap_interval_is_seeded_brackets_the_estimate_and_leaves_the_global_rng():
    a, b = [1.0, 1.2, 0.9, 1.1], [2.0, 2.1, 1.9]
    state = random.getstate()
    ratio = lambda x, y: statistics.fmean(x) / statistics.fmean(y)  # noqa: E731
    first, second = bootstrap_interval([a, b], ratio), bootstrap_interval([a, b], ratio)
    assert random.getstate() == state and first == second
    assert first[0] <= ratio(a, b) <= first[1] < 1  # a clearly below b: the interval too
    assert bootstrap_interval([[1.0], [2.0]], ratio) == (0.5, 0.5)  # one seed: no spread
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_interval([a, []], ratio)
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval([a], statistics.fmean, level=1.5)


def test_mean_curve_averages_the_steps_every_curve_has():
    steps, losses = mean_curve([{0: 4.0, 50: 3.0, 100: 2.0}, {0: 6.0, 100: 4.0}])
    assert steps == [0, 100] and losses == [5.0, 3.0]
    assert mean_curve([]) == ([], [])
