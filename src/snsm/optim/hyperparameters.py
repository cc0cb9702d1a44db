"""The hyperparameters of a param group and their checks: each raises ValueError naming the
bad value and what is expected (:mod:`snsm.checks`)."""

from __future__ import annotations

from typing import Any, Callable

from snsm import checks as check
from snsm.projectors import PROJECTORS
from snsm.rules import (ACCUMULATORS, COMPLEMENT_RULES, MOMENTUM_RULES, REFRESH_RULES,
                        SUBSET_RULES)
from snsm.rules.bf16 import BF16_UPDATES
from snsm.rules.orthogonalize import (NORMALIZE_RULES, NS_DTYPES, SHAPE_SCALES,
                                      check_coefficients, check_matrix_shape)
from snsm.rules.quantize import STATE_PRECISIONS

# Group keys torch or common tooling may add besides the hyperparameters.
EXTRA_GROUP_KEYS = frozenset({"params", "name", "initial_lr"})


def check_subset_size(value: Any) -> int | str:
    """A positive int or one of the named rules."""
    if isinstance(value, str) and value in SUBSET_RULES:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(
        f"subset_size must be a positive int or one of {', '.join(map(repr, SUBSET_RULES))}; "
        f"got {value!r}")


HYPERPARAMETER_CHECKS: dict[str, Callable[[Any], Any]] = {
    "lr": lambda v: check.check_nonnegative("lr", v),
    "eps": lambda v: check.check_nonnegative("eps", v),
    "weight_decay": lambda v: check.check_nonnegative("weight_decay", v),
    "betas": check.check_betas,
    "momentum": lambda v: check.check_choice("momentum", v, MOMENTUM_RULES),
    "accumulator": lambda v: check.check_choice("accumulator", v, ACCUMULATORS),
    "bias_correction": lambda v: check.check_bool("bias_correction", v),
    "subset_size": check_subset_size,
    "rank": lambda v: check.check_int("rank", v, 1),
    "projector": lambda v: check.check_choice("projector", v, PROJECTORS),
    "update_gap": lambda v: check.check_int("update_gap", v, 1),
    "on_refresh": lambda v: check.check_choice("on_refresh", v, REFRESH_RULES),
    "seed": lambda v: check.check_int("seed", v, 0),
    "use_snsm": lambda v: check.check_bool("use_snsm", v),
    "state_precision": lambda v: check.check_choice("state_precision", v, STATE_PRECISIONS),
    "foreach": lambda v: check.check_bool("foreach", v, allow_none=True),
    "maximize": lambda v: check.check_bool("maximize", v),
    "compile": lambda v: check.check_bool("compile", v),
    "bf16_update": lambda v: check.check_choice("bf16_update", v, BF16_UPDATES),
    "skip_nonfinite": lambda v: check.check_bool("skip_nonfinite", v),
    "nesterov": lambda v: check.check_bool("nesterov", v),
    "complement": lambda v: check.check_choice("complement", v, COMPLEMENT_RULES),
    "orthogonalize": lambda v: check.check_bool("orthogonalize", v),
    "ns_steps": lambda v: check.check_int("ns_steps", v, 1),
    "ns_coefficients": check_coefficients,
    "ns_dtype": lambda v: check.check_choice("ns_dtype", v, NS_DTYPES),
    "shape_scale": lambda v: check.check_choice("shape_scale", v, SHAPE_SCALES),
    "normalize": lambda v: check.check_choice("normalize", v, NORMALIZE_RULES),
}


def check_hyperparameters(hparams: dict) -> None:
    """Validate every hyperparameter present in ``hparams`` (a group or the defaults)."""
    for key, value in hparams.items():
        if key in HYPERPARAMETER_CHECKS:
            HYPERPARAMETER_CHECKS[key](value)


def check_orthogonal_group(group: dict) -> None:
    """A group with ``orthogonalize`` on (``group``: its keys over the defaults) must have
    ``accumulator="none"`` and hold matrices only; ValueError naming the value otherwise."""
    if not group["orthogonalize"]:
        return
    if group["accumulator"] != "none":
        raise ValueError(f"orthogonalize=True takes accumulator='none' (the orthogonalized "
                         f"update has no per-coordinate step size; normalize= adds a second "
                         f"moment after it), got accumulator={group['accumulator']!r}")
    params = group["params"]
    for param in [params] if hasattr(params, "shape") else params:
        if hasattr(param, "shape"):
            check_matrix_shape(tuple(param.shape), "orthogonalize=True (the matrix rule)")


def check_unknown_keys(param_group: dict, defaults: dict) -> None:
    """ValueError naming the keys of ``param_group`` that are neither hyperparameters nor the
    keys torch and common tooling add."""
    unknown = set(param_group) - set(defaults) - EXTRA_GROUP_KEYS
    if unknown:
        raise ValueError(f"unknown param group key(s) {sorted(unknown)}; valid keys: "
                         f"{sorted(set(defaults) | {'params', 'name'})}")


def check_same_step_setting(key: str, param_group: dict, groups: list[dict],
                            defaults: dict) -> None:
    """ValueError unless ``param_group`` has the existing groups' value of ``key``, a setting
    that applies to whole steps (``skip_nonfinite``)."""
    value = param_group.get(key, defaults[key])
    if groups and groups[0][key] != value:
        raise ValueError(f"{key} applies to whole steps: every param group must have the same "
                         f"value (the first has {groups[0][key]!r}, this one {value!r})")
