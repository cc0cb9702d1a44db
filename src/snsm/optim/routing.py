"""Routing a model's parameters: matrices to Subset-Norm / Subspace-Momentum, the rest plain.

As in the paper, every ``nn.Linear`` weight (the lm_head included) goes to the
SN/SM group; embeddings, norms and biases go to a plain group with
``use_snsm=False`` (per-coordinate step sizes, full EMA momentum). A weight
shared by several modules (a tied lm_head) lands once, in the plain group.
"""

from __future__ import annotations

from collections import Counter

from torch import nn


def _linear_weight_ids(model: nn.Module) -> set[int]:
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}


def param_groups(model: nn.Module, plain: dict | None = None, **snsm_hparams) -> list[dict]:
    """Param groups for ``model``: ``[{"params": matrices, ...}, {"params": rest, "use_snsm": False}]``.

    Args:
        model: the module whose trainable parameters are routed.
        plain: extra hyperparameters of the plain group (for example ``{"lr": 1e-3}``).
        **snsm_hparams: extra hyperparameters of the SN/SM group.

    Empty groups are left out. Raises RuntimeError if the groups do not cover
    every trainable parameter exactly once.
    """
    occurrences = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    linear = _linear_weight_ids(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in trainable if id(p) in linear and occurrences[id(p)] == 1]
    matrix_ids = {id(p) for p in matrices}
    rest = [p for p in trainable if id(p) not in matrix_ids]
    check_exact_cover(trainable, [matrices, rest])
    groups = [{"params": matrices, **snsm_hparams},
              {"params": rest, "use_snsm": False, **(plain or {})}]
    return [group for group in groups if group["params"]]


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
