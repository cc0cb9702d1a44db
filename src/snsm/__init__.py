"""snsm: Subset-Norm and Subspace-Momentum, memory-efficient adaptive optimizers for PyTorch.

The public API is ``__all__``: the optimizers and their registry (:mod:`snsm.optim`) and the
state accounting (:mod:`snsm.memory`). ``import snsm`` loads torch and nothing else
third-party; the research workbench (``snsm_workbench``) is a separate package above it.
"""

from snsm.memory import estimate_state_bytes, state_bytes
from snsm.optim import (SGDSM, SNSM, AdaGrad, AdaGradNorm, AdaGradSN, AdaGradSNSM, AdamSM,
                        AdamSN, AdamSNSM, AdamW, InBackwardSteps, Muon, MuonSM, MuonSN, MuonSNSM,
                        NonFiniteGradientError, OptimizerSpec, RMSpropSN, create_optimizer,
                        describe_routing, get_optimizer_class, get_spec, list_optimizers,
                        param_groups, step_in_backward)

__version__ = "0.1.0"

__all__ = ["SNSM", "AdaGrad", "AdaGradNorm", "AdaGradSN", "AdaGradSNSM", "AdamSM", "AdamSN",
           "AdamSNSM", "AdamW", "InBackwardSteps", "Muon", "MuonSM", "MuonSN", "MuonSNSM",
           "NonFiniteGradientError", "OptimizerSpec", "RMSpropSN", "SGDSM", "create_optimizer",
           "describe_routing", "estimate_state_bytes", "get_optimizer_class", "get_spec",
           "list_optimizers", "param_groups", "state_bytes", "step_in_backward"]
