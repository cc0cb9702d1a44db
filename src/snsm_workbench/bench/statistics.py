"""Statistics over seeds: mean ± sd, interpolated steps-to-target, t intervals.

* ``steps_to_target``: the first crossing of ``target`` by the validation curve,
  linearly interpolated between the two evaluations around it:
  ``s = s_0 + (s_1 - s_0) (l_0 - target) / (l_0 - l_1)``; None if never reached.
* Intervals of a difference of means ``a - b`` at level ``1 - α`` (Student t quantiles
  from :mod:`snsm_workbench.bench.student_t`):

  - ``paired_interval`` (same seeds, same data order: the design pairs): the differences
    ``d_i = a_i - b_i``, ``d̄ ± t_{1-α/2, n-1} s_d / √n``;
  - ``welch_interval`` (unpaired): ``ā - b̄ ± t_{1-α/2, ν} √(s_a²/n_a + s_b²/n_b)`` with the
    Welch–Satterthwaite ``ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a-1) + (s_b²/n_b)²/(n_b-1))``;
    when one arm has a single value (a one-seed peer) its variance cannot be estimated, so it
    borrows the other arm's (equal variances; Crawford and Howell's single-case test):
    ``x - b̄ ± t_{1-α/2, n_b-1} s_b √(1 + 1/n_b)``;
  - ``log_ratio_interval`` (a ratio such as "0.71x the steps", one ratio per seed pair): the
    paired interval of ``log r_i``, mapped back by ``exp`` (a geometric mean and its interval).

  The bootstrap these replace (percentiles of resampled seeds) covered the truth only ~79% of
  the time for a stated 95% at 3 seeds (tests/snsm_workbench/bench/test_statistics.py); the
  t intervals hold their level (the same test's simulation). A claim needs the interval to
  exclude zero (or 1 for a ratio).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from snsm_workbench.bench.student_t import t_cdf, t_quantile

LEVEL = 0.95


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    if not values:
        raise ValueError("mean_sd needs at least one value")
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def mean_curve(curves: Sequence[Mapping[int, float]]) -> tuple[list[int], list[float]]:
    """(steps, mean loss over ``curves``) at the steps every curve ({step: loss}) has."""
    if not curves:
        return [], []
    steps = sorted(set.intersection(*(set(curve) for curve in curves)))
    return steps, [statistics.fmean(curve[step] for curve in curves) for step in steps]


def steps_to_target(steps: Sequence[int], losses: Sequence[float], target: float
                    ) -> float | None:
    """The interpolated step at which ``losses`` (evaluated at ``steps``) first reach ``target``."""
    previous = None
    for step, loss in zip(steps, losses):
        if math.isfinite(loss) and loss <= target:
            if previous is None:
                return float(step)
            s0, l0 = previous
            return s0 + (step - s0) * (l0 - target) / (l0 - loss)
        previous = (step, loss) if math.isfinite(loss) else None
    return None


@dataclass(frozen=True)
class Interval:
    """An estimate, its interval at ``level``, the t test's degrees of freedom and two-sided p,
    and the design that made it (``paired``, ``welch``, ``single`` or ``none``: no spread)."""

    estimate: float
    low: float
    high: float
    df: float
    p: float
    design: str
    level: float = LEVEL

    @property
    def bounds(self) -> tuple[float, float]:
        return self.low, self.high

    def excludes(self, value: float = 0.0) -> bool:
        """Whether the interval lies wholly on one side of ``value`` (the test clears the bar)."""
        return self.low > value or self.high < value


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def t_interval(estimate: float, se: float, df: float, design: str,
               level: float = LEVEL) -> Interval:
    """``estimate ± t_{(1+level)/2, df} se`` and the two-sided p of ``estimate = 0``."""
    _check_level(level)
    if se == 0 or not math.isfinite(df):
        return Interval(estimate, estimate, estimate, df, 0.0 if estimate else 1.0, design, level)
    half = t_quantile((1 + level) / 2, df) * se
    p = 2 * (1 - t_cdf(abs(estimate) / se, df))
    return Interval(estimate, estimate - half, estimate + half, df, p, design, level)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The one-sample t interval of ``mean(values)`` (2+ values)."""
    if len(values) < 2:
        raise ValueError(f"mean_interval needs 2+ values, got {len(values)}")
    mean, sd = mean_sd(values)
    return t_interval(mean, sd / math.sqrt(len(values)), len(values) - 1, "one-sample", level)


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """The t interval of ``mean(a_i - b_i)``, ``a_i`` and ``b_i`` from the same seed."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired_interval needs two equal-length samples of 2+ values, got "
                         f"{len(a)} and {len(b)}")
    mean, sd = mean_sd([x - y for x, y in zip(a, b)])
    return t_interval(mean, sd / math.sqrt(len(a)), len(a) - 1, "paired", level)


def welch_from_summary(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float,
                       n_b: int, level: float = LEVEL) -> Interval:
    """Welch's interval of ``mean_a - mean_b`` from each arm's mean, sd and size; an arm of
    one value borrows the other arm's variance (single-case test, df = n - 1)."""
    if min(n_a, n_b) < 1 or max(n_a, n_b) < 2:
        raise ValueError(f"welch needs one arm of 2+ values and none empty, got {n_a}, {n_b}")
    delta = mean_a - mean_b
    if min(n_a, n_b) == 1:
        n, sd = (n_b, sd_b) if n_a == 1 else (n_a, sd_a)
        return t_interval(delta, sd * math.sqrt(1 + 1 / n), n - 1, "single", level)
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    if va + vb == 0:
        return t_interval(delta, 0.0, math.inf, "welch", level)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return t_interval(delta, math.sqrt(va + vb), df, "welch", level)


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Welch's interval of ``mean(a) - mean(b)`` (unpaired samples)."""
    if not a or not b:
        raise ValueError(f"welch_interval needs non-empty samples, got sizes {len(a)}, {len(b)}")
    return welch_from_summary(*mean_sd(a), len(a), *mean_sd(b), len(b), level=level)


def difference_interval(a: Mapping[int, float], b: Mapping[int, float],
                        level: float = LEVEL) -> Interval:
    """``mean(a) - mean(b)`` for values keyed by seed: paired when both have the same 2+ seeds
    (same seed, same data order), Welch (or single-case) otherwise."""
    if set(a) == set(b) and len(a) > 1:
        seeds = sorted(a)
        return paired_interval([a[s] for s in seeds], [b[s] for s in seeds], level)
    if len(a) == len(b) == 1:
        return Interval(a[min(a)] - b[min(b)], -math.inf, math.inf, 0.0, 1.0, "none", level)
    return welch_interval(list(a.values()), list(b.values()), level)


def log_ratio_interval(ratios: Sequence[float], level: float = LEVEL) -> Interval:
    """The geometric mean of per-seed-pair ratios and its interval: the paired t interval of
    ``log r_i`` mapped back by ``exp``. An infinite ratio (a seed that never reached) makes the
    estimate and the upper end infinite and the lower end 0 (no information; ∞ when no seed
    reached); one ratio has no interval."""
    if not ratios or any(not r > 0 for r in ratios):
        raise ValueError(f"log_ratio_interval needs positive ratios, got {list(ratios)}")
    if any(math.isinf(r) for r in ratios):
        low = math.inf if all(math.isinf(r) for r in ratios) else 0.0
        return Interval(math.inf, low, math.inf, len(ratios) - 1, 1.0, "paired", level)
    if len(ratios) == 1:
        return Interval(ratios[0], 0.0, math.inf, 0.0, 1.0, "none", level)
    logs = [math.log(r) for r in ratios]
    mean, sd = mean_sd(logs)
    t = t_interval(mean, sd / math.sqrt(len(logs)), len(logs) - 1, "paired", level)
    return Interval(math.exp(t.estimate), math.exp(t.low), math.exp(t.high), t.df, t.p,
                    "paired", level)
