"""snsm: Subset-Norm and Subspace-Momentum, memory-efficient adaptive optimizers for PyTorch.

The public names: the library (:mod:`snsm.optim`) and the memory measurements
(:mod:`snsm.memory`). See docs/architecture.md for the layers.
"""

from snsm.memory import estimate_state_bytes, state_bytes
from snsm.optim import (SGDSM, SNSM, AdaGrad, AdaGradNorm, AdaGradSN, AdaGradSNSM, AdamSM,
                        AdamSN, AdamSNSM, AdamW, NonFiniteGradientError, OptimizerSpec,
                        RMSpropSN, create_optimizer, get_optimizer_class, get_spec,
                        list_optimizers, param_groups, step_in_backward)

__version__ = "0.1.0"

__all__ = ["SNSM", "AdaGrad", "AdaGradNorm", "AdaGradSN", "AdaGradSNSM", "AdamSM", "AdamSN",
           "AdamSNSM", "AdamW", "NonFiniteGradientError", "OptimizerSpec", "RMSpropSN", "SGDSM",
           "create_optimizer", "estimate_state_bytes", "get_optimizer_class", "get_spec",
           "list_optimizers", "param_groups", "state_bytes", "step_in_backward"]
