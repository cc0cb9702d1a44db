"""Optimizer names -> specs: ``create_optimizer(model, name, **hparams)``.

A spec is what the command line, the harness, the bench and the tests need to
know of an optimizer without probing its signature: its class, its constructor's default lr
(``constructor_lr``), the paper's lr where the paper gives one (LLaMA-60M), the peak lr the
training harness uses on its small models (``harness_lr``), and which hyperparameters it
accepts (a rank, a projector, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from snsm.optim import named
from snsm.optim.describe import log_routing
from snsm.optim.optimizer import SNSM
from snsm.optim.routing import param_groups


@dataclass(frozen=True)
class OptimizerSpec:
    """One registry entry (see the module docstring)."""

    name: str
    cls: type[SNSM]
    harness_lr: float  # peak lr of `snsm train` on the tiny model (Subset-Norm ~10x AdamW's)
    paper_lr: float | None = None  # the paper's LLaMA-60M lr, where it gives one
    route: str = "linear"  # the default route of create_optimizer (snsm.param_groups)

    @property
    def constructor_lr(self) -> float:
        """The class constructor's default lr (not the harness's: ``harness_lr``)."""
        return self.cls.constructor_lr

    @property
    def options(self) -> tuple[str, ...]:
        """The hyperparameters the class accepts (beside ``params``)."""
        return self.cls.options

    @property
    def takes_rank(self) -> bool:
        return "rank" in self.options

    @property
    def takes_projector(self) -> bool:
        return "projector" in self.options

    @property
    def summary(self) -> str:
        """The first line of the class docstring."""
        return (self.cls.__doc__ or "").strip().splitlines()[0]


OPTIMIZERS: dict[str, OptimizerSpec] = {spec.name: spec for spec in (
    OptimizerSpec("adamw", named.AdamW, harness_lr=3e-3, paper_lr=5e-3),
    OptimizerSpec("adamw_sn", named.AdamSN, harness_lr=3e-2, paper_lr=5e-2),
    OptimizerSpec("adamw_snsm", named.AdamSNSM, harness_lr=3e-2, paper_lr=5e-2),
    OptimizerSpec("adamw_sm", named.AdamSM, harness_lr=3e-3),
    OptimizerSpec("adagrad", named.AdaGrad, harness_lr=3e-2),
    OptimizerSpec("adagrad_norm", named.AdaGradNorm, harness_lr=3e-1),
    OptimizerSpec("adagrad_sn", named.AdaGradSN, harness_lr=3e-1),
    OptimizerSpec("adagrad_snsm", named.AdaGradSNSM, harness_lr=1.0, paper_lr=1.0),
    OptimizerSpec("rmsprop_sn", named.RMSpropSN, harness_lr=6e-3, paper_lr=1e-2),
    OptimizerSpec("sgd_sm", named.SGDSM, harness_lr=3e-1),
    # The Muon family: hidden matrices orthogonalized, the head in the auxiliary group; 5e-3:
    # Muon's tuned matrix lr in the standard record (its plain group: 1e-2).
    OptimizerSpec("muon", named.Muon, harness_lr=5e-3, route="hidden"),
    OptimizerSpec("muon_sn", named.MuonSN, harness_lr=5e-3, route="hidden"),
    OptimizerSpec("muon_sm", named.MuonSM, harness_lr=5e-3, route="hidden"),
    OptimizerSpec("muon_snsm", named.MuonSNSM, harness_lr=5e-3, route="hidden"),
)}


def list_optimizers() -> list[str]:
    """The registry's names."""
    return list(OPTIMIZERS)


def get_spec(name: str) -> OptimizerSpec:
    """The spec registered as ``name``; ValueError listing the names otherwise."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def get_optimizer_class(name: str) -> type[SNSM]:
    """The class registered as ``name``; ValueError listing the names otherwise."""
    return get_spec(name).cls


def create_optimizer(model: nn.Module, name: str, plain: dict | None = None,
                     route: str | None = None, verbose: bool = False, **hparams) -> SNSM:
    """Route ``model`` with :func:`snsm.param_groups` and build optimizer ``name``.

    ``hparams`` go to the optimizer (both groups); ``plain`` overrides the plain
    group only (for example ``plain={"lr": 1e-3}`` for the embeddings and norms);
    ``route`` is :func:`snsm.param_groups`'s (default: the spec's, ``"hidden"`` for the
    Muon family, else ``"linear"``). The routing table (:func:`snsm.describe_routing`: each
    tensor's rule, lr, weight decay and state bytes) is logged at INFO with ``verbose=True``,
    else at DEBUG, on the ``snsm.optim.describe`` logger.
    Raises TypeError if ``model`` is not an ``nn.Module`` (see :func:`require_module`).
    """
    require_module(model, "create_optimizer")
    spec = get_spec(name)
    optimizer = spec.cls(param_groups(model, plain=plain, route=route or spec.route), **hparams)
    log_routing(optimizer, model, verbose)
    return optimizer


def require_module(model, caller: str) -> nn.Module:
    """``model`` if it is an ``nn.Module``; else a TypeError naming what was passed and the way
    to build an optimizer from a list of tensors or param groups (the classes take those)."""
    if isinstance(model, nn.Module):
        return model
    raise TypeError(
        f"{caller} routes a model: it takes an nn.Module (for example {caller}(model, "
        f"'adamw_snsm')), got {_shown(model)}. For a list of tensors or "
        "param groups (or model.parameters()), use an optimizer class: "
        "snsm.AdamSNSM(params, lr=...), or snsm.get_optimizer_class(name)(params, ...); "
        "snsm.param_groups(model) builds the routed groups")


def _shown(value) -> str:
    """A short description of ``value``: its type, and its text or its length."""
    kind = type(value).__name__
    if isinstance(value, str):
        return f"str {value!r}"
    if isinstance(value, (list, tuple, dict)):
        return f"a {kind} of {len(value)} items"
    return f"a {kind}"
