"""The suites of ``snsm bench``: which contenders, model, steps, seeds and tuning budget.

* ``demo``: our three (AdamW, AdamSN, AdamSNSM) on the tiny model, minutes.
* ``quick``: ours, the ablations and every peer on the tiny model, sized for about
  30 minutes on a 2-core CPU shared with other work (one thread): a 20-step tuning
  sweep on small grids, then 100-step runs at batch 8, evaluated every 5 steps;
  our three get 3 seeds, peers and ablations one.
* ``full``: the same contenders on the ``small`` model, longer, 3 seeds for all.
* ``finetune``: a Shakespeare-pretrained tiny model continued on the King James
  Bible (tokenized with the Shakespeare tokenizer) with each optimizer, 3 seeds.
* ``gpu``: LLaMA-60M on one GPU with bf16 autocast, ours and the most used peers at fixed
  lrs (ours: the harness lrs from the CPU tuning; peers: their authors'), sized for at
  most 8 minutes on one H200 (an estimate: no GPU has run it yet).
* ``standard``: the long, fairly tuned suite (:mod:`snsm_workbench.bench.standard`).

``Suite.smoke()`` is any suite's code path in seconds on the CPU (tiny model, a few
steps), for the tests.

Grids: AdamW's is at least as fine as ours (6 points over a factor of 10, against
4 for Subset-Norm), so the comparison cannot favour ours through tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from snsm_workbench.bench.contenders import ADAMW_LR, Contender
from snsm_workbench.bench.peers import PEERS

SNSM_ARGS = {"rank": 32, "update_gap": 100, "projector": "svd"}  # tiny model: 128-wide matrices
ADAMW_GRID = (1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2)
SN_GRID = (1e-2, 2e-2, 3e-2, 5e-2)

OURS = (
    Contender("adamw", "adamw", False, 3e-3, ADAMW_GRID),
    Contender("adamw_sn", "adamw_sn", False, 3e-2, SN_GRID),
    Contender("adamw_snsm", "adamw_snsm", False, 3e-2, SN_GRID, dict(SNSM_ARGS)),
)
ABLATIONS = (
    # The plain group (embedding, norms) at AdamW's lr instead of the SN lr.
    Contender("adamw_snsm_plain_at_adamw_lr", "adamw_snsm", False, 3e-2, (), dict(SNSM_ARGS),
              plain_lr=ADAMW_LR, seeds=1),
    # The embedding also gets Subset-Norm / Subspace-Momentum.
    Contender("adamw_snsm_all_matrices", "adamw_snsm", False, 3e-2, (), dict(SNSM_ARGS),
              route="all-matrices", seeds=1),
)
# LLaMA-60M on a GPU: the paper's rank (128) and a refresh every 200 steps.
GPU_SNSM_ARGS = {"rank": 128, "update_gap": 200, "projector": "svd"}
GPU_OURS = tuple(replace(c, optimizer_args=dict(GPU_SNSM_ARGS)) if c.optimizer_args else c
                 for c in OURS)
GPU_PEERS = ("galore", "apollo", "muon", "adam_mini", "adamw8bit")
# Ablations without a grid take the tuned lr of this contender.
LR_FROM = {"adamw_snsm_plain_at_adamw_lr": "adamw_snsm", "adamw_snsm_all_matrices": "adamw_snsm"}


def peer_contenders(seeds: int | None) -> tuple[Contender, ...]:
    """One contender per peer adapter, at its recommended lr and grid."""
    return tuple(Contender(p.name, p.name, True, p.lr, p.grid, seeds=seeds)
                 for p in PEERS.values())


@dataclass(frozen=True)
class Suite:
    """A suite's settings (see the module docstring)."""

    name: str
    contenders: tuple[Contender, ...]
    preset: str = "tiny"
    steps: int = 200
    seeds: int = 1
    tune: bool = False
    tune_steps: int = 40
    batch_size: int = 16
    eval_every: int = 10
    eval_batches: int = 4
    finetune: dict = field(default_factory=dict)  # pretrain_steps, data (finetune only)
    device: str = "auto"  # auto, cpu or cuda (snsm_workbench.train.parallel.use_cuda)
    bf16: bool = False  # bfloat16 autocast

    def with_route(self, route: str) -> Suite:
        """Every one of our contenders (not the ablations, not peers) on ``route``."""
        contenders = tuple(replace(c, route=route) if not c.peer and c.label not in LR_FROM
                           else c for c in self.contenders)
        return replace(self, contenders=contenders)

    def smoke(self) -> Suite:
        """The same contenders and code path in seconds on the CPU: tiny model, few steps."""
        return replace(self, preset="tiny", steps=4, seeds=min(self.seeds, 2), tune_steps=2,
                       batch_size=2, eval_every=2, eval_batches=1, device="cpu",
                       finetune=self.finetune and {**self.finetune, "pretrain_steps": 2})


SUITES: dict[str, Suite] = {
    "demo": Suite("demo", OURS, steps=300, eval_every=25, eval_batches=8),
    "quick": Suite("quick", OURS + ABLATIONS + peer_contenders(seeds=1), steps=100, seeds=3,
                   tune=True, tune_steps=20, batch_size=8, eval_every=5, eval_batches=4),
    "full": Suite("full", OURS + ABLATIONS + peer_contenders(seeds=None), preset="small",
                  steps=1000, seeds=3, tune=True, tune_steps=150, eval_every=25,
                  eval_batches=8),
    "finetune": Suite("finetune", OURS + peer_contenders(seeds=1), steps=200, seeds=3,
                      batch_size=8, eval_every=10, eval_batches=4,
                      finetune={"pretrain_steps": 150, "corpus": "kjv"}),
    "gpu": Suite("gpu", GPU_OURS + tuple(c for c in peer_contenders(seeds=1)
                                         if c.label in GPU_PEERS),
                 preset="llama-60m", steps=1000, seeds=1, batch_size=16, eval_every=100,
                 eval_batches=8, device="cuda", bf16=True),
}


def get_suite(name: str) -> Suite:
    """Suite ``name``; ValueError listing the names otherwise."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]


def select(suite: Suite, labels: list[str] | None) -> Suite:
    """``suite`` restricted to ``labels`` (AdamW, the baseline, is always kept)."""
    if not labels:
        return suite
    known = {c.label for c in suite.contenders}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"suite {suite.name!r} has no contender(s) {unknown}; "
                         f"choose from {', '.join(sorted(known))}")
    wanted = set(labels) | {"adamw"}
    return replace(suite, contenders=tuple(c for c in suite.contenders if c.label in wanted))
