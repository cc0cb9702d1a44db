"""Routing a model's parameters into the matrix group and the plain group.

* The **matrix group** (``use_snsm=True``, the default) gets Subset-Norm and
  Subspace-Momentum.
* The **plain group** (``use_snsm=False``) gets per-coordinate step sizes and full
  EMA momentum: AdamW's rules.

Routes:

* ``"linear"`` (the paper's): every ``nn.Linear`` weight, the lm_head included,
  to the matrix group; embeddings, norms and biases to the plain group. A weight
  shared by several modules (a tied lm_head) lands once, in the plain group.
* ``"all-matrices"``: every 2-D parameter (the embedding too) to the matrix group,
  vectors to the plain group.
* ``"hidden"`` (the Muon family's): the :func:`hidden_matrices` (``nn.Linear`` weights of the
  blocks, not the output layer: ``lm_head``, ``output`` or ``head``) to the matrix group; the
  embedding, the head, norms and biases to the plain group (the auxiliary group of
  :mod:`snsm.optim.auxiliary`).

:func:`hidden_matrices` names a different set, the one the peers (GaLore, Muon,
...) project: the ``nn.Linear`` weights inside the blocks, not the lm_head.
"""

from __future__ import annotations

import logging
from collections import Counter

from torch import nn

logger = logging.getLogger(__name__)

ROUTES = ("linear", "all-matrices", "hidden")
OUTPUT_NAMES = ("lm_head", "output", "head")  # the output layer's usual attribute names


def _linear_weights(model: nn.Module) -> list[nn.Parameter]:
    occurrences = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    return [m.weight for m in model.modules()
            if isinstance(m, nn.Linear) and occurrences[id(m.weight)] == 1]


def param_groups(model: nn.Module, plain: dict | None = None, route: str = "linear",
                 **matrix_hparams) -> list[dict]:
    """Param groups for ``model``: ``[{"params": matrices, ...}, {"params": rest, "use_snsm": False}]``.

    Args:
        model: the module whose trainable parameters are routed.
        plain: extra hyperparameters of the plain group (for example ``{"lr": 1e-3}``).
        route: ``"linear"``, ``"all-matrices"`` or ``"hidden"`` (see the module docstring).
        **matrix_hparams: extra hyperparameters of the matrix group.

    Empty groups are left out. Raises RuntimeError if the groups do not cover
    every trainable parameter exactly once.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {', '.join(ROUTES)}, got {route!r}")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if route in ("linear", "hidden"):
        linear = {id(p) for p in _linear_weights(model)}
        if route == "hidden":
            linear &= {id(p) for p in hidden_matrices(model)}
        matrices = [p for p in trainable if id(p) in linear]
    else:
        matrices = [p for p in trainable if p.dim() == 2]
    matrix_ids = {id(p) for p in matrices}
    rest = [p for p in trainable if id(p) not in matrix_ids]
    check_exact_cover(trainable, [matrices, rest])
    groups = [{"params": matrices, **matrix_hparams},
              {"params": rest, "use_snsm": False, **(plain or {})}]
    return [group for group in groups if group["params"]]


def output_layer(model: nn.Module) -> nn.Module | None:
    """The model's output layer: a Hugging Face model's output embeddings, else an ``nn.Linear``
    attribute of the model named as in :data:`OUTPUT_NAMES`; None when it has neither."""
    if hasattr(model, "get_output_embeddings"):
        output = model.get_output_embeddings()
        if output is not None:
            return output
    return next((module for name in OUTPUT_NAMES
                 if isinstance(module := getattr(model, name, None), nn.Linear)), None)


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The trainable ``nn.Linear`` weights of the blocks: not the embedding, not the output layer
    (:func:`output_layer`). A model without one is logged (a warning): every ``nn.Linear``
    weight is then a hidden matrix, a head without a usual name included."""
    output = output_layer(model)
    if output is None:
        logger.warning("route 'hidden': %s has no output layer (get_output_embeddings(), or an "
                       "nn.Linear attribute %s), so every nn.Linear weight gets the matrix "
                       "rule; if it has a head by another name, give its groups by hand: "
                       "[{'params': hidden}, {'params': rest, 'use_snsm': False}]",
                       type(model).__name__, ", ".join(OUTPUT_NAMES))
    skip = {id(output.weight)} if output is not None else set()
    return [m.weight for m in model.modules()
            if isinstance(m, nn.Linear) and m.weight.requires_grad and id(m.weight) not in skip]


def split_params(model: nn.Module, chosen: list[nn.Parameter]) -> tuple[list, list]:
    """(chosen, every other trainable parameter), each parameter once."""
    ids = {id(p) for p in chosen}
    return chosen, [p for p in model.parameters() if p.requires_grad and id(p) not in ids]


def check_exact_cover(trainable: list, groups: list[list]) -> None:
    """Raise RuntimeError unless ``groups`` hold every trainable parameter exactly once."""
    counts = Counter(id(p) for group in groups for p in group)
    missing = [p.shape for p in trainable if counts[id(p)] == 0]
    repeated = [p.shape for p in trainable if counts[id(p)] > 1]
    extra = set(counts) - {id(p) for p in trainable}
    if missing or repeated or extra:
        raise RuntimeError(
            f"param groups must cover every trainable parameter exactly once: missing "
            f"{missing}, repeated {repeated}, {len(extra)} not trainable")
