"""Learning-rate tuning: each contender's grid on a short budget, best by validation loss.

Every grid point trains ``tune_steps`` steps with seed 0 and the suite's schedule
(warmup then cosine, compressed to the short budget) and is scored by its final
validation loss; a diverged run scores +inf. Ties go to the smaller lr. A short
budget favours larger lrs a little; the report prints every point so this shows.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.run_one import run_one
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.tokens import TokenData

logger = logging.getLogger(__name__)


def lr_slug(lr: float) -> str:
    """A folder-name-safe spelling of ``lr`` (``3e-03``)."""
    return f"lr{lr:.0e}" if lr == float(f"{lr:.0e}") else f"lr{lr:.3e}"


def tune_lr(contender: Contender, base: TrainConfig, tune_steps: int, work: Path,
            plain_lr: float | None = None, data: TokenData | None = None,
            initial_state: dict | None = None) -> tuple[float, dict[float, float]]:
    """(best lr, {lr: final validation loss}) over ``contender.grid``.

    ValueError for an empty grid or a budget under 2 steps.
    """
    if not contender.grid:
        raise ValueError(f"{contender.label}: no lr grid to tune over")
    if tune_steps < 2:
        raise ValueError(f"tune_steps must be >= 2, got {tune_steps}")
    short = dataclasses.replace(base, steps=tune_steps, eval_every=tune_steps)
    scores: dict[float, float] = {}
    for lr in sorted(contender.grid):
        result = run_one(contender, lr, plain_lr, short, 0,
                         work / contender.label / lr_slug(lr), data, initial_state)
        scores[lr] = result.final_val_loss
        logger.info("tune %s: lr %g -> val loss %.4f", contender.label, lr, scores[lr])
    best = min(scores, key=lambda lr: (scores[lr], lr))
    if not math.isfinite(scores[best]):
        logger.warning("tune %s: every lr diverged; keeping the recommended %g",
                       contender.label, contender.lr)
        return contender.lr, scores
    return best, scores
