"""The update of one param group: ``snsm_update`` picks the single-tensor reference, the
multi-tensor (foreach) path or the compiled path, as ``torch.optim.adam.adam`` does.

All three run the same rule functions (:mod:`snsm.optim.update`): the foreach
path batches the elementwise work and equals the reference bit for bit; the
compiled path equals it to float32 rounding (inductor fuses and reorders).
"""

from __future__ import annotations

from torch import Tensor

from snsm.optim.compiled import compiled_step
from snsm.optim.foreach import foreach_step
from snsm.optim.plan import GroupHParams, ParamPlan
from snsm.optim.update import (UpdateRules, refresh_if_due, step_scalars, stochastic_bits,
                               update_parameter_)


def single_tensor_step(params: list[Tensor], grads: list[Tensor], states: list[dict],
                       plans: list[ParamPlan], hp: GroupHParams, indices: list[int]) -> None:
    """The reference: one parameter at a time."""
    rules = UpdateRules.of(hp)
    for param, grad, state, plan, index in zip(params, grads, states, plans, indices):
        state["step"] += 1
        step = int(state["step"].item())
        refresh_if_due(grad, state, plan, hp, step, index)
        update_parameter_(param, grad, state, plan, step_scalars(step, plan, hp), rules,
                          stochastic_bits(param, hp, index, step, plan.shard))


def snsm_update(params: list[Tensor], grads: list[Tensor], states: list[dict],
                plans: list[ParamPlan], hp: GroupHParams, indices: list[int], *,
                foreach: bool, compiled_graphs: dict | None = None) -> None:
    """Update ``params`` in place from ``grads``; ``states`` and ``plans`` are theirs.

    ``indices`` are the parameters' positions in the optimizer (they seed the random
    projectors). ``compiled_graphs`` (the group's cache of compiled updates) selects
    the compiled path; else ``foreach`` picks the multi-tensor one.
    """
    if compiled_graphs is not None:
        compiled_step(params, grads, states, plans, hp, indices, compiled_graphs)
    elif foreach:
        foreach_step(params, grads, states, plans, hp, indices)
    else:
        single_tensor_step(params, grads, states, plans, hp, indices)
