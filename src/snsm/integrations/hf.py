"""Hugging Face ``transformers.Trainer`` with an snsm optimizer.

The recipe::

    from transformers import Trainer, TrainingArguments
    from snsm.integrations.hf import optimizer_cls_and_kwargs

    trainer = Trainer(
        model=model, args=TrainingArguments(output_dir="out", save_steps=500),
        train_dataset=dataset,
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs(
            model, "adamw_snsm", lr=5e-2, rank=128, update_gap=200,
            plain={"lr": 5e-3}),                     # or args=training_args: its lr and decay
    )
    trainer.train()                                  # ... later:
    trainer.train(resume_from_checkpoint=True)       # optimizer state restored exactly

How it works: ``Trainer.create_optimizer`` builds its own two param groups
(weight decay on / off) and calls ``optimizer_cls(groups, **kwargs)``, except
that a ``"params"`` entry in the kwargs replaces its groups (the hook GaLore
uses). The helper puts :func:`snsm.param_groups`' routing there: every
``nn.Linear`` weight in the Subset-Norm / Subspace-Momentum group, embeddings,
norms and biases in a plain group (``use_snsm=False``). Consequently:

* the Trainer does not read ``TrainingArguments.learning_rate`` and ``weight_decay``: the
  helper's ``hparams`` give them, or ``args=training_args`` makes the Trainer's the defaults
  (without either, a warning names the class defaults used); the Trainer's scheduler then
  scales every group's own lr;
* the plain group gets no weight decay unless ``plain`` sets it: the common convention, which
  exempts embeddings, norms and biases (for the Muon family the plain group holds the lm_head
  too);
* the Trainer pops ``"params"`` from the kwargs when it builds the optimizer,
  so a tuple serves one optimizer: build a fresh one per Trainer (a Trainer
  with ``model_init`` builds a new model, and optimizer, per run: override
  ``Trainer.create_optimizer`` with ``snsm.create_optimizer(self.model, ...)``);
* the Trainer must train the model it was given (no FSDP1 / DeepSpeed wrapping
  that replaces the parameters before the optimizer is built).

Checkpoints need nothing special: the optimizer state holds tensors only, so
the Trainer's ``optimizer.pt`` loads with ``weights_only=True`` and a resumed
run continues bit for bit, with gradient accumulation too
(tested in ``tests/snsm/integrations/test_hf.py``).

The alternative without the Trainer's hook: ``Trainer(optimizers=(opt, None))``
with ``opt = snsm.create_optimizer(model, name, ...)`` built after the model
is on its device; the Trainer still creates the scheduler.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from torch import nn

from snsm.optim.describe import log_routing
from snsm.optim.registry import get_spec, require_module
from snsm.optim.routing import param_groups

__all__ = ["optimizer_cls_and_kwargs"]

logger = logging.getLogger(__name__)


def optimizer_cls_and_kwargs(model: nn.Module, name: str, *, args: Any = None,
                             plain: dict | None = None, verbose: bool = False,
                             **hparams: Any) -> tuple[type, dict[str, Any]]:
    """``(optimizer class, kwargs)`` for ``transformers.Trainer(optimizer_cls_and_kwargs=...)``.

    Args:
        model: the model the Trainer will train (routed with :func:`snsm.param_groups`, by
            the spec's route: ``"hidden"`` for the Muon family).
        name: a registry name (``snsm.list_optimizers()``), for example ``"adamw_snsm"``.
        args: the Trainer's ``TrainingArguments``: its ``learning_rate`` and ``weight_decay``
            are the defaults of ``lr`` and ``weight_decay`` (the Trainer itself ignores them).
        plain: hyperparameters of the plain group only (for example ``{"lr": 5e-3}``); its
            ``weight_decay`` is 0 unless given here.
        verbose: log the routing table (:func:`snsm.describe_routing`: each tensor's rule,
            lr, weight decay and state bytes) at INFO; without it, at DEBUG.
        **hparams: the optimizer's hyperparameters (both groups), ``lr`` included.

    The kwargs hold ``"params"`` (the routed groups) and ``hparams``. Unknown
    names or invalid hyperparameters raise here, not inside ``trainer.train()``.
    """
    require_module(model, "optimizer_cls_and_kwargs")
    spec = get_spec(name)
    cls = spec.cls
    hparams = _lr_and_decay(cls, args, hparams)
    plain = {"weight_decay": 0.0, **(plain or {})}
    groups = param_groups(model, plain=plain, route=spec.route)
    checked = cls([dict(group) for group in groups], **hparams)  # validates; holds no state
    log_routing(checked, model, verbose)
    return cls, {"params": groups, **hparams}


def _lr_and_decay(cls: type, args: Any, hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` with ``lr`` and ``weight_decay`` from ``args`` (TrainingArguments) where not
    given; without ``args``, a warning names the class defaults that stand in for them."""
    if args is not None:
        return {"lr": args.learning_rate, "weight_decay": args.weight_decay, **hparams}
    missing = [key for key in ("lr", "weight_decay") if key not in hparams]
    if missing:
        defaults = inspect.signature(cls).parameters
        used = ", ".join(f"{key}={defaults[key].default!r}" for key in missing)
        logger.warning(
            "optimizer_cls_and_kwargs: the Trainer does not read TrainingArguments' "
            "learning_rate or weight_decay; %s uses %s (its defaults): give them to the helper, "
            "or pass args=training_args", cls.__name__, used)
    return hparams
