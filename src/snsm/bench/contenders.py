"""What the bench compares: ``Contender`` (one optimizer setting) and its optimizer factory.

A contender is either one of ours (a registry name, with optimizer arguments, a
routing and optionally a separate lr for the plain group) or a peer adapter
(:mod:`snsm.bench.peers`). ``make_factory`` turns one, at a given lr, into the
``optimizer_factory(model, config)`` hook of :class:`snsm.train.loop.Trainer`.

Routes of our optimizers:

* ``linear`` (the paper's): every ``nn.Linear`` weight -> SN/SM, the rest plain.
* ``all-matrices``: every 2-D parameter (the embedding too) -> SN/SM, vectors plain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import snsm
from snsm.bench import peers
from snsm.optim.routing import check_exact_cover, param_groups

ROUTES = ("linear", "all-matrices")
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
        return text


def route_groups(model: nn.Module, route: str, plain: dict | None = None) -> list[dict]:
    """Param groups of ``model`` under ``route`` (see the module docstring)."""
    if route == "linear":
        return param_groups(model, plain=plain)
    if route != "all-matrices":
        raise ValueError(f"route must be one of {', '.join(ROUTES)}, got {route!r}")
    trainable = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in trainable if p.dim() == 2]
    rest = [p for p in trainable if p.dim() != 2]
    check_exact_cover(trainable, [matrices, rest])
    groups = [{"params": matrices}, {"params": rest, "use_snsm": False, **(plain or {})}]
    return [g for g in groups if g["params"]]


class StepTimer:
    """Times ``optimizer.step()`` through the optimizer's step hooks (seconds, per step)."""

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def _sync(self, optimizer) -> None:
        device = next((p.device for g in optimizer.param_groups for p in g["params"]), None)
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        import time

        def pre(opt, args, kwargs):
            self._sync(opt)
            self._start = time.perf_counter()

        def post(opt, args, kwargs):
            self._sync(opt)
            self.times.append(time.perf_counter() - self._start)

        optimizer.register_step_pre_hook(pre)
        optimizer.register_step_post_hook(post)


class OptimizerFactory:
    """``factory(model, config)`` for the Trainer; keeps the optimizer built and its timer."""

    def __init__(self, contender: Contender, lr: float, plain_lr: float | None):
        self.contender, self.lr, self.plain_lr = contender, lr, plain_lr
        self.name = contender.label
        self.optimizer: torch.optim.Optimizer | None = None
        self.timer = StepTimer()

    def __call__(self, model: nn.Module, config) -> torch.optim.Optimizer:
        c = self.contender
        if c.peer:
            optimizer = peers.build_peer(c.optimizer, model, self.lr, config.weight_decay)
        else:
            plain = {"lr": self.plain_lr} if self.plain_lr is not None else None
            cls = snsm.get_optimizer_class(c.optimizer)
            optimizer = cls(route_groups(model, c.route, plain), lr=self.lr,
                            weight_decay=config.weight_decay, **c.optimizer_args)
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
