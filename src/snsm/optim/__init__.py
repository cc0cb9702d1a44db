"""The library's optimizers: the generic ``SNSM``, the named optimizers, their registry,
routing and its description, and steps inside the backward pass."""

from snsm.optim.describe import describe_routing
from snsm.optim.in_backward import InBackwardSteps, step_in_backward
from snsm.optim.named import (SGDSM, AdaGrad, AdaGradNorm, AdaGradSN, AdaGradSNSM, AdamSM,
                              AdamSN, AdamSNSM, AdamW, Muon, MuonSM, MuonSN, MuonSNSM,
                              RMSpropSN)
from snsm.optim.nonfinite import NonFiniteGradientError
from snsm.optim.optimizer import SNSM
from snsm.optim.registry import (OptimizerSpec, create_optimizer, get_optimizer_class, get_spec,
                                 list_optimizers)
from snsm.optim.routing import param_groups

__all__ = ["SNSM", "AdaGrad", "AdaGradNorm", "AdaGradSN", "AdaGradSNSM", "AdamSM", "AdamSN",
           "AdamSNSM", "AdamW", "InBackwardSteps", "Muon", "MuonSM", "MuonSN", "MuonSNSM",
           "NonFiniteGradientError", "OptimizerSpec", "RMSpropSN", "SGDSM", "create_optimizer",
           "describe_routing", "get_optimizer_class", "get_spec", "list_optimizers",
           "param_groups", "step_in_backward"]
