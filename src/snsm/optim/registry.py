"""Optimizer names -> classes: ``create_optimizer(model, name, **hparams)``."""

from __future__ import annotations

from torch import nn

from snsm import optim
from snsm.optim.routing import param_groups

OPTIMIZERS: dict[str, type[optim.SNSM]] = {
    "adamw": optim.AdamW,
    "adamw_sn": optim.AdamSN,
    "adamw_snsm": optim.AdamSNSM,
    "adagrad": optim.AdaGrad,
    "adagrad_norm": optim.AdaGradNorm,
    "adagrad_sn": optim.AdaGradSN,
    "adagrad_snsm": optim.AdaGradSNSM,
    "rmsprop_sn": optim.RMSpropSN,
    "sgd_sm": optim.SGDSM,
}


def list_optimizers() -> list[str]:
    """The registry's names."""
    return list(OPTIMIZERS)


def get_optimizer_class(name: str) -> type[optim.SNSM]:
    """The class registered as ``name``; ValueError listing the names otherwise."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def create_optimizer(model: nn.Module, name: str, plain: dict | None = None,
                     **hparams) -> optim.SNSM:
    """Route ``model`` with :func:`snsm.param_groups` and build optimizer ``name``.

    ``hparams`` go to the optimizer (both groups); ``plain`` overrides the plain
    group only (for example ``plain={"lr": 1e-3}`` for the embeddings and norms).
    """
    cls = get_optimizer_class(name)
    return cls(param_groups(model, plain=plain), **hparams)
