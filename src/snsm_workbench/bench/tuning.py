"""Learning-rate tuning: the same protocol and budget for every contender.

The standard suite runs the whole protocol below (its steps and extension counts come from
``tuning`` in ``snsm_workbench/suites/standard.json``); a short suite with ``tune`` runs step 1
alone, on its grid, without extensions (:func:`tune_lr`), and keeps the contender's
recommended lr when every point diverged. The report prints every point, so the small bias of
a short budget towards larger lrs shows.

1. **Grid.** The lr grid (at least a factor of 10, spaced at most x2) at the short horizon
   (a third of the full one, same warmup + cosine schedule compressed), seed 0, scored by
   the final validation loss (a diverged run scores +inf; ties go to the smaller lr).
   While the best point sits on an edge, the grid is extended one x2 step past that edge
   (at most ``max_extensions`` times; a best point still on the edge is flagged).
2. **Plain group** (contenders routed into two groups: the matrices, and the embedding and
   norms): at the chosen lr, the plain-group lr over an absolute grid (x3 spacing), plus
   "same as the matrices" from step 1; extended past an edge the same way.
3. **Confirm** at the full horizon: the chosen lr and its two grid neighbours (seed 0).
   The best is the contender's lr; while it is the lowest or highest lr confirmed, the
   next x2 step past it runs at the full horizon too (at most
   ``confirm_extensions`` times): the full horizon can prefer another lr than the short one (on the tiny model
   AdamW moved up, AdamSNSM down).
4. **Seeds**: more seeds at that lr (seed 0 is the confirm run).

:class:`Tuned` records one contender's pass through the protocol (every point scored, the
edges, the chosen lrs, the seeded runs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from snsm_workbench.bench.contenders import Contender

logger = logging.getLogger(__name__)

# (lrs or plain lrs) -> {value: final validation loss}
Score = Callable[[Iterable[float]], dict[float, float]]


@dataclass(frozen=True)
class Chosen:
    """The best value of a search, and the edge it still sits on (None: interior)."""

    value: float
    edge: str | None


def best_of(scores: dict[float, float]) -> Chosen:
    """The lowest loss (ties: the smaller value); all diverged counts as the low edge."""
    ordered = sorted(scores)
    if not any(math.isfinite(v) for v in scores.values()):
        return Chosen(ordered[0], "low")
    best = min(ordered, key=lambda value: (scores[value], value))
    edge = "low" if best == ordered[0] else "high" if best == ordered[-1] else None
    return Chosen(best, edge)


def search(values: Iterable[float], score: Score, step: float, max_extensions: int) -> tuple[dict[float, float], Chosen]:
    """Scores over ``values``, extended by ``step`` past the edge the best point sits on."""
    scores = dict(score(sorted(set(values))))
    chosen = best_of(scores)
    for _ in range(max_extensions):
        if chosen.edge is None:
            break
        new = min(scores) / step if chosen.edge == "low" else max(scores) * step
        scores.update(score([new]))
        chosen = best_of(scores)
    return scores, chosen


def neighbours(grid: Iterable[float], value: float) -> list[float]:
    """``value`` and the grid points just below and above it (where they exist)."""
    ordered = sorted(grid)
    i = ordered.index(value)
    return ordered[max(0, i - 1):i + 2]


def tune_lr(contender: Contender, score: Score) -> tuple[float, dict[float, float]]:
    """(best lr, {lr: final validation loss}) over ``contender.grid`` scored by ``score``
    (step 1 of the protocol, no extension); the contender's recommended lr when every point
    diverged. ValueError for an empty grid."""
    if not contender.grid:
        raise ValueError(f"{contender.label}: no lr grid to tune over")
    scores, chosen = search(contender.grid, score, step=1.0, max_extensions=0)
    for lr, loss in sorted(scores.items()):
        logger.info("tune %s: lr %g -> val loss %.4f", contender.label, lr, loss)
    if not math.isfinite(scores[chosen.value]):
        logger.warning("tune %s: every lr diverged; keeping the recommended %g",
                       contender.label, contender.lr)
        return contender.lr, scores
    return chosen.value, scores


@dataclass
class Tuned:
    """One contender's tuning record and its seeded runs at the chosen setting."""

    label: str
    grid: dict[float, float] = field(default_factory=dict)
    grid_edge: str | None = None
    plain_grid: dict[float, float] | None = None
    plain_edge: str | None = None
    confirm: dict[float, float] = field(default_factory=dict)
    confirm_edge: str | None = None
    lr: float = math.nan
    plain_lr: float | None = None
    runs: list[dict] = field(default_factory=list)
