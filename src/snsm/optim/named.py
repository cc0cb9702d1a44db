"""The named optimizers: a table of rule settings over the generic :class:`SNSM`.

| class        | momentum       | step size             | accumulator | bias correction |
|--------------|----------------|-----------------------|-------------|-----------------|
| AdamSN       | ema            | subset-norm           | ema         | yes             |
| AdamSNSM     | subspace       | subset-norm           | ema         | yes             |
| AdamSM       | subspace       | per coordinate        | ema         | yes             |
| AdaGradSN    | ema (b1=0.9)   | subset-norm           | sum         | no              |
| AdaGradSNSM  | subspace       | subset-norm           | sum         | no              |
| RMSpropSN    | none           | subset-norm           | ema         | no              |
| SGDSM        | subspace       | none                  | -           | no              |
| AdaGradNorm  | none           | one subset per tensor | sum         | no              |
| AdaGrad      | none           | per coordinate        | sum         | no              |
| AdamW        | ema            | per coordinate        | ema         | yes             |

Each class takes ``params``, then its ``options`` in order (positional or
keyword; ``state_precision="8bit"`` for all but AdaGradNorm, whose one number per tensor
is not worth quantizing), then ``foreach``, ``maximize``, ``compile``, ``bf16_update``
(``"stochastic"``, ``"kahan"`` or ``"nearest"``: bf16 parameters only),
``stochastic_rounding`` (its older alias) and ``skip_nonfinite`` (keyword only); the rest of SNSM's
hyperparameters are fixed by its row. Learning rates: a Subset-Norm accumulator sums
g^2 over a subset of k coordinates, so sqrt(v) is about sqrt(k) times a per-coordinate
one; the paper uses about 10x Adam's lr for AdamSN and AdamSNSM (5e-2 against 5e-3 at
LLaMA-60M), 2x for RMSpropSN, and lr 1.0 for AdaGradSNSM.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from snsm.optim.optimizer import SNSM

_SNSM_PARAMETERS = inspect.signature(SNSM).parameters  # read once, to build the signatures
_KEYWORD_ONLY = ("foreach", "maximize", "compile", "bf16_update", "stochastic_rounding",
                 "skip_nonfinite")
_ADAM = ("lr", "betas", "eps", "weight_decay")
_SUBSPACE = ("rank", "projector", "update_gap", "on_refresh", "seed")
_8BIT = ("state_precision",)  # for those with momentum or a per-coordinate accumulator


@dataclass(frozen=True)
class Recipe:
    """A named optimizer: its docstring, the hyperparameters it exposes (with defaults
    where they differ from SNSM's) and the rule settings it fixes."""

    doc: str
    options: tuple[str, ...]
    fixed: dict
    defaults: dict = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "AdamSN": Recipe(
        "Adam with Subset-Norm step sizes: full EMA momentum, one EMA accumulator per subset.",
        (*_ADAM, "subset_size", *_8BIT),
        dict(momentum="ema", accumulator="ema", bias_correction=True)),
    "AdamSNSM": Recipe(
        "Adam with Subset-Norm step sizes and Subspace-Momentum (the paper's AdamSNSM).",
        (*_ADAM, "subset_size", *_SUBSPACE, *_8BIT),
        dict(momentum="subspace", accumulator="ema", bias_correction=True)),
    "AdamSM": Recipe(
        "Adam with Subspace-Momentum and a per-coordinate denominator (Subspace-Momentum "
        "alone: the ablation between AdamW and AdamSNSM).",
        (*_ADAM, *_SUBSPACE, *_8BIT),
        dict(momentum="subspace", accumulator="ema", bias_correction=True, subset_size=1),
        dict(lr=1e-3, eps=1e-8)),
    "AdaGradSN": Recipe(
        "AdaGrad with Subset-Norm step sizes and EMA momentum (beta1 = 0.9, no bias "
        "correction).", (*_ADAM, "subset_size", *_8BIT),
        dict(momentum="ema", accumulator="sum", bias_correction=False), dict(lr=1e-1)),
    "AdaGradSNSM": Recipe(
        "AdaGrad with Subset-Norm step sizes and Subspace-Momentum (no bias correction).",
        (*_ADAM, "subset_size", *_SUBSPACE, *_8BIT),
        dict(momentum="subspace", accumulator="sum", bias_correction=False), dict(lr=1.0)),
    "RMSpropSN": Recipe(
        "RMSprop with Subset-Norm step sizes: no momentum, EMA accumulator, no bias "
        "correction.", (*_ADAM, "subset_size", *_8BIT),
        dict(momentum="none", accumulator="ema", bias_correction=False), dict(lr=2e-3)),
    "SGDSM": Recipe(
        "SGD with Subspace-Momentum: momentum in a rank-r subspace, plain SGD in its "
        "complement.", ("lr", "betas", "weight_decay", *_SUBSPACE, *_8BIT),
        dict(momentum="subspace", accumulator="none", bias_correction=False, eps=0.0)),
    "AdaGradNorm": Recipe(
        "AdaGrad-Norm: one accumulated squared norm per tensor, no momentum.",
        ("lr", "eps", "weight_decay"),
        dict(momentum="none", accumulator="sum", bias_correction=False, subset_size="tensor"),
        dict(lr=1e-1)),
    "AdaGrad": Recipe(
        "Per-coordinate AdaGrad (equals ``torch.optim.Adagrad`` without weight decay).",
        ("lr", "eps", "weight_decay", *_8BIT),
        dict(momentum="none", accumulator="sum", bias_correction=False, subset_size=1),
        dict(eps=1e-10)),
    "AdamW": Recipe(
        "Per-coordinate AdamW (equals ``torch.optim.AdamW``), the baseline of the family.",
        (*_ADAM, *_8BIT),
        dict(momentum="ema", accumulator="ema", bias_correction=True, subset_size=1),
        dict(lr=1e-3, eps=1e-8)),
}


def _signature(recipe: Recipe) -> inspect.Signature:
    def parameter(name: str, kind) -> inspect.Parameter:
        default = recipe.defaults.get(name, _SNSM_PARAMETERS[name].default)
        return _SNSM_PARAMETERS[name].replace(kind=kind, default=default)

    return inspect.Signature([
        _SNSM_PARAMETERS["params"],
        *(parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in recipe.options),
        *(parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in _KEYWORD_ONLY)])


def named_optimizer(name: str, recipe: Recipe) -> type[SNSM]:
    """The class ``name``: SNSM with ``recipe.fixed`` and the signature of its options."""
    signature = _signature(recipe)

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from None
        bound.apply_defaults()
        SNSM.__init__(self, **bound.arguments, **recipe.fixed)

    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = signature.replace(
        parameters=[self_parameter, *signature.parameters.values()])
    __init__.__qualname__ = f"{name}.__init__"
    return type(name, (SNSM,), {
        "__init__": __init__, "__doc__": recipe.doc, "__module__": __name__,
        "options": (*recipe.options, *_KEYWORD_ONLY),
        "default_lr": float(recipe.defaults.get("lr", _SNSM_PARAMETERS["lr"].default))})


(AdamSN, AdamSNSM, AdamSM, AdaGradSN, AdaGradSNSM, RMSpropSN, SGDSM, AdaGradNorm, AdaGrad,
 AdamW) = (
    named_optimizer(name, recipe) for name, recipe in RECIPES.items())
