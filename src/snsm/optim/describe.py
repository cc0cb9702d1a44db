"""What an optimizer does to each tensor: a plain-text table of its routing.

:func:`describe_routing` lists one row per parameter of an snsm optimizer: its name (from the
model, else ``group<g>[<i>]``), shape, group (``matrix``, ``plain``, or ``aux``: the Muon family's
auxiliary group), the rule it actually gets (its :class:`~snsm.optim.plan.ParamPlan`: momentum,
then the step-size rule), lr, weight decay and state bytes, then a totals line.
State bytes are measured from ``optimizer.state`` where a parameter has state, else computed
from the layout its first step allocates (:func:`snsm.optim.plan.state_layout`, as
:func:`snsm.estimate_state_bytes`: the two agree exactly); the header says which.

:func:`log_routing` logs the table: at INFO with ``verbose=True`` (``create_optimizer`` and the
Hugging Face helper take ``verbose``), else at DEBUG.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn

from snsm.optim.optimizer import SNSM
from snsm.optim.plan import GroupHParams, ParamPlan, state_layout
from snsm.optim.sharding import ShardSpec

logger = logging.getLogger(__name__)

COLUMNS = ("parameter", "shape", "group", "rule", "lr", "wd", "state bytes")
RIGHT_ALIGNED = frozenset({"lr", "wd", "state bytes"})
ESTIMATED = "~"  # marks a row whose state bytes are computed from shapes (no state yet)


def describe_routing(optimizer: SNSM, model: nn.Module | None = None) -> str:
    """The routing table of ``optimizer`` (see the module docstring); ``model`` names the rows.

    Raises TypeError if ``optimizer`` is not an snsm optimizer or ``model`` not an ``nn.Module``.
    """
    _check_inputs(optimizer, model)
    names = _names(model)
    rows, sizes, has_state = [], [], []
    for g, group in enumerate(optimizer.param_groups):
        hp, kind = GroupHParams.from_group(group), _group_kind(optimizer, group)
        for i, param in enumerate(group["params"]):
            state = optimizer.state.get(param)
            has_state.append(bool(state))
            sizes.append(_measured_bytes(state) if state else _layout_bytes(param, hp))
            rows.append((names.get(id(param), f"group{g}[{i}]"), _shape(param), f"{g} {kind}",
                         _rule(group, hp, _plan(param, hp)), f"{hp.lr:.3g}",
                         f"{hp.weight_decay:g}"))
    measured, estimated = sum(has_state), len(rows) - sum(has_state)
    mark = ESTIMATED if measured and estimated else ""
    rows = [(*row, f"{'' if held else mark}{size:,}")
            for row, size, held in zip(rows, sizes, has_state)]
    numel = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
    total = sum(sizes)
    lines = [f"{type(optimizer).__name__}: {len(rows)} tensors in "
             f"{len(optimizer.param_groups)} groups; state bytes {_source(measured, estimated)}",
             *_aligned([COLUMNS, *rows]),
             f"total: {len(rows)} tensors, {numel:,} parameters, {total:,} state bytes"]
    left_out = _not_optimized(model, optimizer)
    if left_out:
        lines.append(f"not in the optimizer: {left_out}")
    return "\n".join(lines)


def log_routing(optimizer: SNSM, model: nn.Module | None = None, verbose: bool = False) -> None:
    """Log :func:`describe_routing` on this module's logger: INFO if ``verbose``, else DEBUG
    (built only when that level is enabled). TypeError for a ``verbose`` that is not a bool."""
    if not isinstance(verbose, bool):
        raise TypeError(f"verbose must be True or False, got {verbose!r}")
    level = logging.INFO if verbose else logging.DEBUG
    if logger.isEnabledFor(level):
        logger.log(level, "%s", describe_routing(optimizer, model))


def _check_inputs(optimizer, model) -> None:
    if not isinstance(optimizer, SNSM):
        hint = (" (the arguments are (optimizer, model): the model came first)"
                if isinstance(optimizer, nn.Module) else "")
        raise TypeError(
            f"describe_routing takes an snsm optimizer (snsm.SNSM or a named class such as "
            f"snsm.AdamSNSM, for example from snsm.create_optimizer), got an object of type "
            f"{type(optimizer).__name__}{hint}; for any torch optimizer, snsm.state_bytes("
            "optimizer) gives its state's size")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"describe_routing's model names the rows: an nn.Module or None, got an object "
                        f"of type {type(model).__name__}")


def _names(model: nn.Module | None) -> dict[int, str]:
    """id(parameter) -> its name in ``model``; a tied one by all its names, ``a=b``."""
    names: dict[int, list[str]] = {}
    for name, param in (model.named_parameters(remove_duplicate=False) if model else ()):
        names.setdefault(id(param), []).append(name)
    return {key: "=".join(found) for key, found in names.items()}


def _group_kind(optimizer: SNSM, group: dict) -> str:
    """``matrix`` (Subset-Norm / Subspace-Momentum, or orthogonalized), ``aux`` (a Muon-family
    group not orthogonalized) or ``plain`` (``use_snsm=False``)."""
    if group["orthogonalize"]:
        return "matrix"
    if optimizer.defaults.get("orthogonalize"):
        return "aux"
    return "matrix" if group["use_snsm"] else "plain"


def _plan(param: Tensor, hp: GroupHParams) -> ParamPlan:
    shard = ShardSpec.of(param)
    return hp.plan(tuple(param.shape)) if shard is None else shard.plan(hp)


def _rule(group: dict, hp: GroupHParams, plan: ParamPlan) -> str:
    """The rule of one tensor, in words: its momentum, then its step-size rule."""
    parts = [_momentum(group, hp, plan), _step_size(hp, plan)]
    if plan.quantized:
        parts.append("8-bit state")
    known = _known_rule(hp, plan)
    return (f"{known}: " if known else "") + " + ".join(parts)


def _known_rule(hp: GroupHParams, plan: ParamPlan) -> str:
    """``adamw`` or ``adagrad`` where the tensor's rule is theirs, else empty."""
    per_coordinate = plan.partition is not None and plan.partition.per_coordinate
    if not per_coordinate or plan.orthogonal is not None:
        return ""
    if plan.momentum == "ema" and not hp.nesterov and hp.accumulator == "ema" \
            and hp.bias_correction:
        return "adamw"
    return "adagrad" if plan.momentum == "none" and hp.accumulator == "sum" else ""


def _momentum(group: dict, hp: GroupHParams, plan: ParamPlan) -> str:
    if plan.momentum == "subspace":
        return f"subspace momentum rank {hp.rank} ({group['projector']})"
    if plan.momentum == "ema":
        return "nesterov ema momentum" if hp.nesterov else "ema momentum"
    return "no momentum"


def _step_size(hp: GroupHParams, plan: ParamPlan) -> str:
    if plan.orthogonal is not None:
        axis = f", {plan.orthogonal.axis}-normalized" if plan.orthogonal.axis else ""
        return f"orthogonalized (NS{plan.orthogonal.steps}{axis})"
    if plan.partition is None:
        return "no step-size rule"
    if plan.partition.per_coordinate:
        return f"per-coordinate v ({hp.accumulator})"
    k = math.prod(plan.partition.view[d] for d in plan.partition.dims)
    return f"subset-norm k={k} ({hp.accumulator})"


def _measured_bytes(state: dict) -> int:
    return sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, Tensor))


def _layout_bytes(param: Tensor, hp: GroupHParams) -> int:
    """The bytes the first step allocates for ``param`` (a shard's own, under FSDP2)."""
    shard = ShardSpec.of(param)
    layout = (state_layout(tuple(param.shape), param.dtype, hp) if shard is None
              else shard.state_layout(param.dtype, hp))
    return sum(math.prod(shape) * torch.empty((), dtype=dtype).element_size()
               for shape, dtype in layout.values())


def _shape(param: Tensor) -> str:
    return "x".join(map(str, param.shape)) or "scalar"


def _source(measured: int, estimated: int) -> str:
    if not estimated:
        return "measured (optimizer.state)"
    if not measured:
        return "estimated from shapes: no state yet (the layout the first step allocates)"
    return f"measured, or estimated from shapes where marked {ESTIMATED} (no state yet)"


def _aligned(rows: list[tuple]) -> list[str]:
    widths = [max(len(row[c]) for row in rows) for c in range(len(COLUMNS))]
    return ["  ".join(cell.rjust(w) if name in RIGHT_ALIGNED else cell.ljust(w)
                      for cell, w, name in zip(row, widths, COLUMNS)).rstrip() for row in rows]


def _not_optimized(model: nn.Module | None, optimizer: SNSM, shown: int = 4) -> str:
    """The model's parameters the optimizer leaves out (frozen ones, usually), a few by name."""
    if model is None:
        return ""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    names = [name for name, p in model.named_parameters() if id(p) not in held]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
