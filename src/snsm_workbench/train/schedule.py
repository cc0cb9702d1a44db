"""The learning-rate schedule of a run: linear warmup over ``w = round(warmup_ratio * steps)``
steps, then cosine decay to ``min_ratio`` times the peak; and what happens to it when a resume
extends the run (``extend_schedule``).

The factor of the peak lr at step ``s`` (0-based) is ``(s + 1) / w`` during the warmup, then

    m + (1 - m) * (1 + cos(pi * p(s))) / 2,   p(s) = min(1, p_a + (1 - p_a) * (s - a) / (T - a))

with ``m = min_ratio`` and total ``T``. A fresh run has the anchor ``a = w``, ``p_a = 0``: the
progress goes from 0 at the warmup's end to 1 at the last step. Extending a run resumed at step
``k`` from ``T`` to ``T' > T`` steps:

* ``continue`` (the default): the anchor moves to ``a = max(k, w)`` with the progress the old
  schedule had there, and the cosine goes on from it to ``p = 1`` at ``T'``: the lr of step ``k``
  is the one the run was about to use (no jump), and it decays to ``m`` at the new last step (a
  finished run, at ``p = 1``, stays at ``m``). The warmup is kept.
* ``rebuild``: the schedule of a run planned for ``T'`` from the start, followed from step ``k``
  on: the lr jumps to that schedule's (a finished run extended from 200 to 300 steps with
  ``m = 0.1``: from 0.1x of the peak to 0.37x; to 400 steps: 0.63x), and the warmup grows with
  ``T'``.

``continue`` is the default because a jump back up after the decay spikes the loss; a resume
that does not extend the run is exact under both (the schedule's anchor and total are saved in
the scheduler's state: :class:`WarmupCosine` is a callable object, whose attributes
``LambdaLR.state_dict`` keeps).
"""

from __future__ import annotations

import logging
import math

import torch

logger = logging.getLogger(__name__)

EXTEND_MODES = ("continue", "rebuild")


class WarmupCosine:
    """The lr factor of a step (see the module docstring): ``WarmupCosine(T, r, m)(s)``."""

    def __init__(self, total: int, warmup_ratio: float, min_ratio: float):
        self.total = total
        self.warmup = round(warmup_ratio * total)
        self.min_ratio = min_ratio
        self.anchor = self.warmup  # the cosine's progress is anchor_progress at step anchor
        self.anchor_progress = 0.0

    def progress(self, step: int) -> float:
        """The cosine's progress ``p(step)``, in [0, 1] after the anchor."""
        span = max(1, self.total - self.anchor)
        return min(1.0, self.anchor_progress + (1 - self.anchor_progress) * (
            (step - self.anchor) / span))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress(step)))
        return self.min_ratio + (1 - self.min_ratio) * cosine

    def continued(self, step: int, total: int) -> "WarmupCosine":
        """This schedule resumed at ``step`` and stretched to ``total`` steps: the same factor
        at ``step``, then the cosine's remaining progress over the new steps."""
        longer = WarmupCosine(total, 0.0, self.min_ratio)
        longer.warmup = self.warmup
        longer.anchor = max(step, self.warmup)
        longer.anchor_progress = self.progress(longer.anchor)
        return longer


def lr_factor(step: int, total: int, warmup_ratio: float, min_ratio: float) -> float:
    """Multiplier of the peak lr at ``step`` (0-based) of a run planned for ``total`` steps."""
    return WarmupCosine(total, warmup_ratio, min_ratio)(step)


def warmup_cosine(optimizer: torch.optim.Optimizer, total: int, warmup_ratio: float,
                  min_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """The scheduler of :class:`WarmupCosine` over ``total`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(total, warmup_ratio, min_ratio))


def extend_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, step: int, saved_total: int,
                    config) -> None:
    """After loading the checkpoint of a run planned for ``saved_total`` steps, resumed at
    ``step``: the schedule for ``config.steps`` steps, extended as ``config.extend_schedule``
    says (``continue`` or ``rebuild``: the module docstring). Nothing changes when the total is
    the saved one."""
    schedule = scheduler.lr_lambdas[0]
    if schedule.total != saved_total:  # a checkpoint that did not save its schedule
        vars(schedule).update(vars(WarmupCosine(saved_total, config.warmup_ratio,
                                                config.min_lr_ratio)))
    total, mode = config.steps, getattr(config, "extend_schedule", "continue")
    if total == schedule.total:
        return
    if mode == "rebuild":
        extended = WarmupCosine(total, config.warmup_ratio, config.min_lr_ratio)
    else:
        extended = schedule.continued(step, total)
    vars(schedule).update(vars(extended))  # every group's lambda is this one object
    groups = scheduler.optimizer.param_groups
    for group, base in zip(groups, scheduler.base_lrs):
        group["lr"] = base * schedule(step)
    scheduler._last_lr = [group["lr"] for group in groups]
    logger.info("steps %d -> %d from step %d: the schedule is %s (lr factor %.4g)", saved_total,
                total, step, "rebuilt for the new total" if mode == "rebuild" else
                "continued to the new last step", schedule(step))
