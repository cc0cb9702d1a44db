"""Step times measured side by side: every contender's model stepped in interleaved rounds.

Whole training runs execute one after another, so a noisy neighbour on a shared
machine shifts one contender's times and not another's. Here each contender gets
its own model and optimizer (same init, same batches), and the rounds alternate:
round r steps contender 1 ``steps_per_round`` times, then contender 2, ... Round 0
is a warm-up and is dropped; the medians over the other rounds are reported.

Per step: the training step (forward, backward, clipping, ``optimizer.step()``,
``zero_grad``) in seconds, and ``optimizer.step()`` alone in milliseconds (through
the optimizer's step hooks).
"""

from __future__ import annotations

import logging
import statistics

import torch
import torch.nn.functional as F

from snsm_workbench.bench.contenders import Contender, ContenderFactory
from snsm_workbench.measure.timing import time_ms
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.models import build_model
from snsm_workbench.train.tokens import TokenData, get_batch

logger = logging.getLogger(__name__)


def _train_step(model, optimizer, inputs, targets, clip: float) -> None:
    logits = model(input_ids=inputs).logits
    F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten()).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def interleaved_step_times(contenders: list[tuple[Contender, float, float | None]],
                           base: TrainConfig, data: TokenData, rounds: int = 5,
                           steps_per_round: int = 2,
                           initial_state: dict | None = None) -> dict[str, dict]:
    """``{label: {"step_s": median, "opt_step_ms": median}}`` for (contender, lr, plain_lr)."""
    if rounds < 2 or steps_per_round < 1:
        raise ValueError(f"need rounds >= 2 and steps_per_round >= 1, got {rounds}, "
                         f"{steps_per_round}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    entries = []
    for contender, lr, plain_lr in contenders:
        model = build_model(base.preset, data.vocab_size, base.seq_len, seed=0)
        if initial_state is not None:
            model.load_state_dict(initial_state)
        model.to(device)
        factory = ContenderFactory(contender, lr, plain_lr)
        entries.append((contender.label, model, factory(model, base), factory.timer, []))
    seq_len = entries[0][1].config.max_position_embeddings if entries else 0
    for r in range(rounds):
        for label, model, optimizer, timer, times in entries:
            for k in range(steps_per_round):
                inputs, targets = get_batch(data.train, r * steps_per_round + k,
                                            base.batch_size, seq_len, 0)
                inputs, targets = inputs.to(device), targets.to(device)
                seconds = time_ms(lambda: _train_step(model, optimizer, inputs, targets,
                                                      base.grad_clip), [device]) / 1e3
                if r > 0:
                    times.append(seconds)
        logger.info("timing: round %d of %d done", r + 1, rounds)
    warm = steps_per_round  # the opt-step times of round 0
    return {label: {"step_s": statistics.median(times),
                    "opt_step_ms": 1e3 * statistics.median(timer.times[warm:])}
            for label, _, _, timer, times in entries}
