"""The learning-rate schedule of a run: linear warmup over ``warmup_ratio * steps`` steps,
then cosine decay to ``min_ratio`` times the peak; rebuilt when a resume extends the run."""

from __future__ import annotations

import logging
import math

import torch

logger = logging.getLogger(__name__)


def lr_factor(step: int, total: int, warmup_ratio: float, min_ratio: float) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warmup, then cosine to min_ratio."""
    warmup = round(warmup_ratio * total)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, total: int, warmup_ratio: float,
                  min_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """The scheduler of :func:`lr_factor` over ``total`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup_ratio, min_ratio))


def rebuild_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, step: int, saved_total: int,
                     total: int, warmup_ratio: float, min_ratio: float) -> None:
    """A checkpoint of a run planned for ``saved_total`` steps, resumed at ``step`` for
    ``total``: the lr of the next step is the new schedule's (``scheduler``, built for
    ``total``, follows it from then on)."""
    if saved_total == total:
        return
    factor = lr_factor(step, total, warmup_ratio, min_ratio)
    groups = scheduler.optimizer.param_groups
    for group, base in zip(groups, scheduler.base_lrs):
        group["lr"] = base * factor
    scheduler._last_lr = [group["lr"] for group in groups]
    logger.info("steps %d -> %d: the schedule is rebuilt for %d steps from step %d "
                "(lr factor %.4g)", saved_total, total, total, step, factor)
