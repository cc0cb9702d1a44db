"""Optimizers: the generic ``SNSM`` and the named combinations built on it."""

from snsm.optim.named import (AdaGrad, AdaGradNorm, AdaGradSN, AdaGradSNSM, AdamSN, AdamSNSM,
                              AdamW, RMSpropSN, SGDSM)
from snsm.optim.optimizer import SNSM

__all__ = ["SNSM", "AdaGrad", "AdaGradNorm", "AdaGradSN", "AdaGradSNSM", "AdamSN", "AdamSNSM",
           "AdamW", "RMSpropSN", "SGDSM"]
