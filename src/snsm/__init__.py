"""snsm: Subset-Norm and Subspace-Momentum, memory-efficient adaptive optimizers for PyTorch."""

from snsm.measure.memory import estimate_state_bytes, state_bytes
from snsm.optim import (SGDSM, SNSM, AdaGrad, AdaGradNorm, AdaGradSN, AdaGradSNSM, AdamSN,
                        AdamSNSM, AdamW, RMSpropSN)
from snsm.optim.registry import create_optimizer, get_optimizer_class, list_optimizers
from snsm.optim.routing import param_groups

__version__ = "0.1.0"

__all__ = ["SNSM", "AdaGrad", "AdaGradNorm", "AdaGradSN", "AdaGradSNSM", "AdamSN", "AdamSNSM",
           "AdamW", "RMSpropSN", "SGDSM", "create_optimizer", "estimate_state_bytes",
           "get_optimizer_class", "list_optimizers", "param_groups", "state_bytes"]
