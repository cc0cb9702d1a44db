"""Learning-rate tuning: the same protocol and budget for every contender.

The standard suite runs the whole protocol below (its steps and extension counts come from
``tuning`` in ``benchmarks/suites/standard.json``); a short suite with ``tune`` runs step 1
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
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.run_one import run_one
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.tokens import TokenData

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


def lr_slug(lr: float) -> str:
    """A folder-name-safe spelling of ``lr`` (``3e-03``)."""
    return f"lr{lr:.0e}" if lr == float(f"{lr:.0e}") else f"lr{lr:.3e}"


def tune_lr(contender: Contender, base: TrainConfig, tune_steps: int, work: Path,
            plain_lr: float | None = None, data: TokenData | None = None,
            initial_state: dict | None = None) -> tuple[float, dict[float, float]]:
    """(best lr, {lr: final validation loss}) over ``contender.grid`` at ``tune_steps``
    steps, seed 0 (step 1 of the protocol, no extension). ValueError for an empty grid or a
    budget under 2 steps."""
    if not contender.grid:
        raise ValueError(f"{contender.label}: no lr grid to tune over")
    if tune_steps < 2:
        raise ValueError(f"tune_steps must be >= 2, got {tune_steps}")
    short = dataclasses.replace(base, steps=tune_steps, eval_every=tune_steps)

    def score(lrs: Iterable[float]) -> dict[float, float]:
        scores = {}
        for lr in lrs:
            scores[lr] = run_one(contender, lr, plain_lr, short, 0,
                                 work / contender.label / lr_slug(lr), data,
                                 initial_state).final_val_loss
            logger.info("tune %s: lr %g -> val loss %.4f", contender.label, lr, scores[lr])
        return scores
    scores, chosen = search(contender.grid, score, step=1.0, max_extensions=0)
    if not math.isfinite(scores[chosen.value]):
        logger.warning("tune %s: every lr diverged; keeping the recommended %g",
                       contender.label, contender.lr)
        return contender.lr, scores
    return chosen.value, scores
