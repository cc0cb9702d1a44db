"""One real training step of a preset, its peak memory measured beside the estimate.

``snsm memory --measure``: for each registry setup of :data:`snsm_workbench.measure.total.SETUPS`,
a freshly built LLaMA of the preset (random init, the catalogue's vocabulary) takes
two steps at the given micro-batch: forward under bf16 autocast, backward (with
activation checkpointing if asked), the optimizer's step. The first allocates the
optimizer's state; the second is measured, its state live throughout (as every later
step of a run: the first step, whose state appears only at its end, peaks lower). The
peak is :class:`snsm_workbench.measure.peak.PeakMemory`'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from snsm_workbench.measure.models import PRESETS
from snsm_workbench.measure.peak import PeakMemory
from snsm_workbench.measure.total import GALORE_8BIT, SETUPS, Setup, total_row
from snsm_workbench.measure.memory import rank_hparams
from snsm.optim import create_optimizer, step_in_backward
from snsm_workbench.train.models import build_model
from snsm_workbench.train.out_of_memory import out_of_memory


def _optimizer(model, setup: Setup, rank: int):
    optimizer = create_optimizer(model, setup.optimizer, **rank_hparams(setup.optimizer, rank),
                                 **setup.hparams)
    if setup.in_backward:
        step_in_backward(model, optimizer)
    return optimizer


MEASURE_ADVICE = ("lower --micro-batch or --seq-len, add --checkpointing, or measure a "
                  "smaller --model")


def measure_step(preset: str, setup: Setup, micro_batch: int, seq_len: int | None,
                 checkpointing: bool, rank: int, device: str = "cpu") -> dict:
    """``{"setup", "estimate", "measured"}`` in bytes for one step of ``setup``;
    :class:`~snsm_workbench.util.errors.OutOfMemory` (one line) when it does not fit."""
    with out_of_memory(f"measuring {setup.name} on {preset} ({micro_batch} x "
                       f"{seq_len or PRESETS[preset].seq_len} tokens, {device})",
                       MEASURE_ADVICE):
        return _measure_step(preset, setup, micro_batch, seq_len, checkpointing, rank, device)


def _measure_step(preset: str, setup: Setup, micro_batch: int, seq_len: int | None,
                  checkpointing: bool, rank: int, device: str) -> dict:
    shape = PRESETS[preset]
    seq_len = seq_len or shape.seq_len
    model = build_model(preset, shape.vocab, seq_len, seed=0).to(device, setup.weights)
    if checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    optimizer = _optimizer(model, setup, rank)
    tokens = torch.randint(0, shape.vocab, (micro_batch, seq_len),
                           generator=torch.Generator().manual_seed(0)).to(device)
    _train_step(model, optimizer, tokens, device)  # allocates the state: steady state after
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    with PeakMemory(device, existing=[*model.parameters(), *state]) as meter:
        _train_step(model, optimizer, tokens, device)
    estimate = total_row(model, shape, setup, rank, micro_batch * seq_len, checkpointing,
                         foreach=torch.device(device).type == "cuda")  # the step's path
    return {"setup": setup.name, "estimate": estimate["total"], "measured": meter.peak_bytes}


def _train_step(model, optimizer, tokens: torch.Tensor, device: str) -> None:
    """Forward under bf16 autocast, backward, the optimizer's step, gradients dropped."""
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        logits = model(input_ids=tokens).logits
    F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten()).backward()
    del logits
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def measure_rows(preset: str, micro_batch: int, seq_len: int | None, checkpointing: bool,
                 rank: int, device: str = "cpu") -> list[dict]:
    """:func:`measure_step` for every setup that runs here (GaLore 8-bit needs its package)."""
    return [measure_step(preset, setup, micro_batch, seq_len, checkpointing, rank, device)
            for setup in SETUPS.values() if setup.optimizer != GALORE_8BIT]
