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
_MATRIX_GROUPS = ("a dict group not marked use_snsm=False is a matrix group, where the 1-D "
                  "tensor of this test raises a ValueError (tests/snsm/optim/test_muon.py)")
MUON_SKIPS = {
    "test_sparse_gradient_raises_with_nothing_changed": _MATRIX_GROUPS,
    "test_add_param_group_validates_before_adding": _MATRIX_GROUPS,
    "test_bf16_parameters_step_with_bf16_state": "reads the first group's plan for every tensor; "
    "the aux group differs (bf16 state dtypes: test_muon.py)",
}

OPTIM_DB = [
    OptimInfo("adamw", snsm.AdamW, lr=5e-2),
    OptimInfo("adamw_sn", snsm.AdamSN, lr=1e-1),
    *[OptimInfo(f"adamw_snsm[{p}]", snsm.AdamSNSM, dict(SM, projector=p), lr=1e-1)
      for p in PROJECTORS],
    OptimInfo("snsm[gaussian,buffer]", snsm.SNSM, dict(SM, projector="gaussian",
                                                        complement="buffer"), lr=1e-1),
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
    # The Muon family: a plain list splits into matrices (orthogonalized) and the rest (aux).
    *[OptimInfo(name, cls, kwargs, lr=3e-2, skips=MUON_SKIPS) for name, cls, kwargs in (
        ("muon", snsm.Muon, {}),
        ("muon[fp32,no-nesterov,adamw_8bit]", snsm.Muon,
         dict(ns_dtype="float32", nesterov=False, aux="adamw_8bit")),
        ("muon[8bit,sn_8bit]", snsm.Muon, dict(state_precision="8bit", aux="sn_8bit")),
        ("muon_sn", snsm.MuonSN, {}),
        ("muon_sn[column]", snsm.MuonSN, dict(normalize="column")),
        ("muon_sm", snsm.MuonSM, dict(SM, projector="svd")),
        ("muon_sm[none,reset,uniform]", snsm.MuonSM,
         dict(SM, projector="uniform", complement="none", on_refresh="reset")),
        ("muon_snsm", snsm.MuonSNSM, dict(SM, projector="svd")),
        ("muon_sm[buffer,project]", snsm.MuonSM, dict(SM, projector="svd", complement="buffer")),
        ("muon_snsm[8bit,heuristic]", snsm.MuonSNSM,
         dict(SM, projector="svd", normalize="heuristic", state_precision="8bit")),
    )],
    OptimInfo("snsm[k=4,topk,sum]", snsm.SNSM,
              dict(SM, projector="topk", subset_size=4, accumulator="sum", bias_correction=False),
              lr=3e-1),
]
