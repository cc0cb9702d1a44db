"""The auxiliary group of the orthogonalizing optimizers (the Muon family): its rule, written out
as the group's own keys.

Newton-Schulz orthogonalizes hidden matrices only; the embedding, the head, norms and biases
step by an ordinary adaptive rule, the *auxiliary rule*, chosen with ``aux``:

* ``"adamw"``: AdamW with ``torch.optim.AdamW``'s betas (0.9, 0.999) and eps 1e-8 (torch's
  Muon documentation pairs it with a plain AdamW; a group key, e.g. ``plain={"betas": (0.9,
  0.95)}``, changes them), state precision as the optimizer's ``state_precision``;
* ``"adamw_8bit"``: the same with 8-bit momentum and second moment (:mod:`snsm.rules.quantize`;
  1-D tensors stay full precision);
* ``"sn_8bit"``: Subset-Norm with the heuristic partition (one second-moment value per row of
  the embedding and head; per coordinate for vectors) and 8-bit momentum. Its second moment
  sums a row's squares, so it wants a larger lr than AdamW's (about 10x, as AdamSN).

The rule is stored in the group (``orthogonalize=False``, ``momentum``, ``accumulator``, ...):
a state dict, a copy or a pickle carries it, and ``param_groups`` shows it.
"""

from __future__ import annotations

from typing import Iterable

from torch import Tensor

AUX_RULES = ("adamw", "adamw_8bit", "sn_8bit")


def aux_settings(aux: str, state_precision: str) -> dict:
    """The group keys of the auxiliary rule ``aux``; ValueError naming an unknown one."""
    if aux not in AUX_RULES:
        raise ValueError(f"aux must be one of {', '.join(map(repr, AUX_RULES))}, got {aux!r}")
    settings = dict(orthogonalize=False, nesterov=False, complement="gradient",
                    normalize="none", momentum="ema", accumulator="ema", bias_correction=True,
                    betas=(0.9, 0.999), eps=1e-8, subset_size=1, use_snsm=False,
                    state_precision=state_precision)
    if aux == "adamw_8bit":
        settings["state_precision"] = "8bit"
    elif aux == "sn_8bit":
        settings.update(subset_size="heuristic", use_snsm=True, state_precision="8bit")
    return settings


def _is_matrix(param) -> bool:
    return isinstance(param, Tensor) and param.dim() >= 2 and param.numel() > 0


def _is_aux(group: dict) -> bool:
    """A group the caller marked plain (``use_snsm=False``, as :func:`snsm.param_groups`'s
    second group) or not orthogonalized."""
    return group.get("use_snsm", True) is False or group.get("orthogonalize", True) is False


def orthogonal_groups(params: Iterable, aux: str, state_precision: str) -> list:
    """Param groups of an orthogonalizing optimizer.

    Plain tensors: the matrices (2+ dims, not empty) in one group, the rest in the auxiliary
    group. Dict groups: each one marked plain becomes an auxiliary group (its own keys,
    ``use_snsm`` aside, win over the rule's); the others stay matrix groups, where a 1-D or
    empty tensor raises a ValueError (:func:`snsm.optim.hyperparameters.check_orthogonal_group`).
    """
    settings = aux_settings(aux, state_precision)
    params = [params] if isinstance(params, Tensor) else list(params)
    if params and all(isinstance(group, dict) for group in params):
        return [{**settings, **{k: v for k, v in group.items() if k != "use_snsm"}}
                if _is_aux(group) else group for group in params]
    if any(isinstance(p, dict) for p in params):
        return params  # torch's own error for a mix of tensors and groups
    matrices = [p for p in params if _is_matrix(p)]
    rest = [p for p in params if not _is_matrix(p)]
    groups = [{"params": matrices}, {"params": rest, **settings}]
    return [group for group in groups if group["params"]] or params
