"""What the bench compares: ``Contender`` (one optimizer setting) and its optimizer factory.

A contender is either one of ours (a registry name, with optimizer arguments, a
routing and optionally a separate lr for the plain group) or a peer adapter
(:mod:`snsm_workbench.bench.peers`). ``ContenderFactory`` turns one, at a given lr, into the
``optimizer_factory(model, config)`` hook of :class:`snsm_workbench.train.loop.Trainer`.

Our optimizers are routed by :func:`snsm.param_groups` (``route``: ``linear``, the
paper's, or ``all-matrices``, the embedding too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snsm_workbench.bench import peers
from snsm_workbench.measure.timing import StepTimer
from snsm.optim.in_backward import step_in_backward
from snsm.optim.registry import create_optimizer

ADAMW_LR = "adamw"  # plain_lr value meaning: AdamW's (tuned) lr


@dataclass(frozen=True)
class Contender:
    """One optimizer setting of a suite.

    ``optimizer`` is a registry name (``peer=False``) or a peer adapter name;
    ``grid`` the lrs ``--tune`` tries; ``plain_lr`` a number, ``"adamw"`` (AdamW's lr:
    the ablation that separates Subset-Norm from a larger embedding lr) or None (= lr).
    """

    label: str
    optimizer: str
    peer: bool
    lr: float
    grid: tuple[float, ...]
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    plain_lr: float | str | None = None
    route: str = "linear"
    seeds: int | None = None  # None: the suite's seed count
    in_backward: bool = False  # ours: steps inside the backward pass (snsm.step_in_backward)
    weights: str = "fp32"  # ours: "bf16" trains pure-bf16 weights (no fp32 master copy)

    def describe(self) -> str:
        """A one-line description for the report."""
        if self.peer:
            return peers.get_peer(self.optimizer).routing
        args = ", ".join(f"{k}={v}" for k, v in self.optimizer_args.items())
        text = f"snsm {self.optimizer}" + (f" ({args})" if args else "") + f", route {self.route}"
        if self.plain_lr == ADAMW_LR:
            text += ", plain group at AdamW's lr"
        elif self.plain_lr is not None:
            text += f", plain group lr {self.plain_lr:g}"
        text += ", pure-bf16 weights" if self.weights == "bf16" else ""
        return text + (", steps inside the backward pass" if self.in_backward else "")


class ContenderFactory:
    """``factory(model, config)`` for the Trainer; keeps the optimizer built and its step timer."""

    def __init__(self, contender: Contender, lr: float, plain_lr: float | None):
        self.contender, self.lr, self.plain_lr = contender, lr, plain_lr
        self.name = contender.label
        self.optimizer: torch.optim.Optimizer | None = None
        self.timer = StepTimer()

    def __call__(self, model: nn.Module, config) -> torch.optim.Optimizer:
        c = self.contender
        if c.peer:
            optimizer = peers.build_peer(c.optimizer, model, self.lr, config.weight_decay,
                                         plain_lr=self.plain_lr)
        else:
            plain = {"lr": self.plain_lr} if self.plain_lr is not None else None
            optimizer = create_optimizer(model, c.optimizer, plain=plain, route=c.route,
                                         lr=self.lr, weight_decay=config.weight_decay,
                                         **c.optimizer_args)
        if c.in_backward:
            step_in_backward(model, optimizer)
        self.timer.attach(optimizer)
        self.optimizer = optimizer
        return optimizer


def resolve_plain_lr(contender: Contender, adamw_lr: float | None) -> float | None:
    """The plain group's lr: a number, AdamW's lr for ``"adamw"``, or None (the group lr)."""
    if contender.plain_lr == ADAMW_LR:
        if adamw_lr is None:
            raise ValueError(f"{contender.label}: plain_lr='adamw' needs an adamw contender")
        return adamw_lr
    return contender.plain_lr
