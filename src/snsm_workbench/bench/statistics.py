"""Statistics over seeds: mean ± sd, interpolated steps-to-target, bootstrap intervals.

* ``steps_to_target``: the first crossing of ``target`` by the validation curve,
  linearly interpolated between the two evaluations around it:
  ``s = s_0 + (s_1 - s_0) (l_0 - target) / (l_0 - l_1)``; None if never reached.
* ``bootstrap_interval``: the percentile interval of a statistic of several contenders'
  seeds, each contender's seeds resampled with replacement (a seeded ``random.Random``,
  never the global RNG). A claim of "better" needs the whole interval on one side.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence

BOOTSTRAP_SAMPLES = 4000
BOOTSTRAP_SEED = 0


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


def bootstrap_interval(groups: Sequence[Sequence[float]],
                       statistic: Callable[..., float], level: float = 0.95,
                       samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
                       ) -> tuple[float, float]:
    """Percentile interval of ``statistic(*groups)`` when each group (the seeds of one
    contender) is resampled with replacement; a seeded ``random.Random``."""
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError(f"bootstrap_interval needs non-empty groups, got sizes "
                         f"{[len(g) for g in groups]}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = random.Random(seed)
    values = sorted(statistic(*(rng.choices(g, k=len(g)) for g in groups))
                    for _ in range(samples))
    tail = (1 - level) / 2
    return values[int(tail * (samples - 1))], values[int(math.ceil((1 - tail) * (samples - 1)))]
