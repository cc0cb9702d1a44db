"""One entry per optimizer configuration, run through the shared contract tests.

Like torch's ``OptimizerInfo``: each entry says how to build the optimizer for
the tests and which contract tests do not apply to it (with the reason, on the
entry itself, so skips cannot drift away from the table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import snsm
from snsm.projectors import PROJECTORS


@dataclass(frozen=True)
class OptimInfo:
    """``skips``: contract test name -> reason; the contract module's autouse fixture
    skips those tests for this entry, and a test checks that each name is a real test."""

    name: str
    cls: type
    kwargs: dict = field(default_factory=dict)
    lr: float = 1e-2  # a learning rate that descends on the test problems
    skips: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.name

    def accepts(self, key: str) -> bool:
        """Whether the class takes hyperparameter ``key`` (declared by the class, as the
        registry reads it)."""
        return key in self.cls.options

    def make(self, params, **overrides):
        return self.cls(params, **{"lr": self.lr, **self.kwargs, **overrides})


SM = dict(rank=2, update_gap=3)

OPTIM_DB = [
    OptimInfo("adamw", snsm.AdamW, lr=5e-2),
    OptimInfo("adamw_sn", snsm.AdamSN, lr=1e-1),
    *[OptimInfo(f"adamw_snsm[{p}]", snsm.AdamSNSM, dict(SM, projector=p), lr=1e-1)
      for p in PROJECTORS],
    OptimInfo("adamw_snsm[project]", snsm.AdamSNSM, dict(SM, projector="svd", on_refresh="project"),
              lr=1e-1),
    OptimInfo("adamw_sm", snsm.AdamSM, dict(SM, projector="svd"), lr=1e-1),
    OptimInfo("adagrad", snsm.AdaGrad, lr=2e-1),
    OptimInfo("adagrad_norm", snsm.AdaGradNorm, lr=5e-1),
    OptimInfo("adagrad_sn", snsm.AdaGradSN, lr=2e-1),
    OptimInfo("adagrad_snsm", snsm.AdaGradSNSM, dict(SM, projector="svd"), lr=3e-1),
    OptimInfo("rmsprop_sn", snsm.RMSpropSN, lr=2e-2),
    OptimInfo("sgd_sm", snsm.SGDSM, dict(SM, projector="svd"), lr=1e-3),
    OptimInfo("sgd_sm[uniform]", snsm.SGDSM, dict(SM, projector="uniform"), lr=1e-3),
    # 8-bit states (snsm.rules.quantize): codes and scales instead of m and v.
    OptimInfo("adamw[8bit]", snsm.AdamW, dict(state_precision="8bit"), lr=5e-2),
    OptimInfo("adamw_snsm[8bit,project]", snsm.AdamSNSM,
              dict(SM, projector="svd", on_refresh="project", state_precision="8bit"), lr=1e-1),
    OptimInfo("adagrad[8bit]", snsm.AdaGrad, dict(state_precision="8bit"), lr=2e-1),
    OptimInfo("snsm[sqrt,rsvd]", snsm.SNSM, dict(SM, projector="rsvd", subset_size="sqrt"),
              lr=1e-1),
    OptimInfo("snsm[k=4,topk,sum]", snsm.SNSM,
              dict(SM, projector="topk", subset_size=4, accumulator="sum", bias_correction=False),
              lr=3e-1),
]
