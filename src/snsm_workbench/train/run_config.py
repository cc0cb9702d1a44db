"""A run's settings resolved once: ``resolve(config)`` -> a frozen :class:`RunConfig`.

``TrainConfig`` marks derived values with ``None``; each is derived here and nowhere else:

* ``lr``       = ``config.lr``, or the optimizer's :func:`~snsm_workbench.train.config.harness_lr`;
* ``plain_lr`` = ``config.plain_lr``, or ``lr`` (the plain group: embeddings, norms);
* ``seq_len``  = ``config.seq_len``, or the preset's;
* ``weight_dtype`` = the torch dtype of ``config.weights``.

The settings themselves stay as given (``settings``): the run record and the checkpoints
keep ``None`` for a derived value, so a run resumes under the same record.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from snsm_workbench.measure.models import PRESETS
from snsm_workbench.train.config import WEIGHT_DTYPES, TrainConfig, harness_lr

# The TrainConfig fields a RunConfig resolves (a resume compares them resolved).
RESOLVED_FIELDS = ("lr", "plain_lr", "seq_len")


@dataclass(frozen=True)
class RunConfig:
    """One run's settings, frozen, with the derived values resolved.

    ``settings`` is a private copy of the validated :class:`TrainConfig` (derived values
    ``None``, as recorded); read every other setting there. ``weight_decay`` is repeated
    here so that an ``optimizer_factory(model, run_config)`` finds its optimizer's
    hyperparameters (``lr``, ``plain_lr``, ``weight_decay``) in one place.
    """

    settings: TrainConfig
    lr: float
    plain_lr: float
    seq_len: int
    weight_decay: float
    weight_dtype: torch.dtype

    def value(self, key: str) -> Any:
        """Setting ``key`` as the run uses it: resolved for :data:`RESOLVED_FIELDS`."""
        return getattr(self, key) if key in RESOLVED_FIELDS else getattr(self.settings, key)


def resolve(config: TrainConfig) -> RunConfig:
    """``config`` (validated) with its derived values resolved, frozen."""
    settings = copy.deepcopy(config)
    lr = settings.lr if settings.lr is not None else harness_lr(settings.optimizer)
    return RunConfig(
        settings=settings, lr=lr,
        plain_lr=settings.plain_lr if settings.plain_lr is not None else lr,
        seq_len=settings.seq_len or PRESETS[settings.preset].seq_len,
        weight_decay=settings.weight_decay, weight_dtype=WEIGHT_DTYPES[settings.weights])
