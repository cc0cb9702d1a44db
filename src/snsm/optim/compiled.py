r"""The compiled step (``compile=True``): eager bookkeeping around one compiled update.

``torch.compile(optimizer.step)`` stumbles on what the step does in Python: it
reads the step count with ``.item()`` (bias corrections, the projector's refresh
schedule, its seeds), a refresh runs an SVD or draws from a CPU generator, and a
scheduler changes ``lr`` every step. Each is a graph break or, once dynamo
specializes on the value, a recompilation every step. As in torch's
``capturable`` Adam, the fix is to hand the compiled code every step-dependent
scalar as tensor data. A step here is therefore split in two:

1. eager, per parameter: ``step += 1``; on a refresh step, rebuild the projector
   (exactly the eager path's SVD / QR / seeded draws); evaluate the scalars of
   step t (in float64 Python) and pack them, one row per parameter, in a float32
   tensor on the parameters' device:

   .. math::
       \bigl(-\eta / (1 - \beta_1^t),\; \sqrt{1 - \beta_2^t},\; 1 - \beta_1^{\tau},\;
       1 - \eta\lambda\bigr)

   (each correction is 1 where the group does not apply it; tau counts the
   steps since the subspace momentum restarted);
2. compiled: the pure tensor math of the update for a bucket of parameters
   (momentum, projection and back-projection, accumulator, denominator, the
   update), one graph per (param group, device, dtype) with ``fullgraph=True``
   and static shapes. Neither the step count nor the learning rate retraces it;
   changing another hyperparameter (betas, eps) or the set of parameters with
   gradients does, once.

The math is the eager reference's, the same functions (:mod:`snsm.optim.update`); the
compiled update agrees with it to float32 rounding (tested), not bit for bit,
since inductor fuses and reorders the elementwise work. Dynamo counts graphs per
code object, and each (optimizer, group, device, dtype) compiles its own copy of the
update's code (:func:`fresh_compiled_update`), so compiled optimizers do not share a
budget. One copy recompiles when a guarded setting changes (betas, eps, the set of
parameters with gradients); past ``torch._dynamo.config.recompile_limit`` (8)
graphs of one copy, dynamo (torch 2.13) does not fall back to eager under
``fullgraph=True``: the step raises ``FailOnRecompileLimitHit``.
"""

from __future__ import annotations

import types
from typing import Callable

import torch
from torch import Tensor

from snsm.optim.foreach import group_by_device_and_dtype
from snsm.optim.plan import GroupHParams, ParamPlan
from snsm.optim.update import (StepScalars, UpdateRules, refresh_if_due, step_scalars,
                               stochastic_bits, update_parameter_)
from snsm.projectors.base import host_to_device


def scalar_row(scalars: StepScalars) -> tuple[float, float, float, float]:
    """A parameter's row of the scalar table (a correction not applied is stored as 1)."""
    return (scalars.step_size,
            1.0 if scalars.bias_correction2_sqrt is None else scalars.bias_correction2_sqrt,
            1.0 if scalars.momentum_correction is None else scalars.momentum_correction,
            scalars.decay)


def _update(params: list[Tensor], grads: list[Tensor], states: list[dict],
            plans: list[ParamPlan], table: Tensor, rules: UpdateRules,
            bits: list[Tensor | None]) -> None:
    """The traced update of one bucket: each row of ``table`` back into :class:`StepScalars`;
    ``bits``: each parameter's stochastic-rounding bits (drawn eagerly) or None."""
    for i, (param, grad, state, plan) in enumerate(zip(params, grads, states, plans)):
        row = table[i]
        scalars = StepScalars(row[0], row[1] if rules.corrects_denominator else None,
                              row[2] if rules.bias_correction else None, row[3])
        update_parameter_(param, grad, state, plan, scalars, rules, bits[i])


def fresh_compiled_update() -> Callable:
    """``torch.compile(_update)`` over a private copy of its code object.

    Dynamo keeps its graphs, and counts recompilations against
    ``recompile_limit``, per code object: sharing ``_update`` would let every
    compiled optimizer of the process draw on the same 8 graphs. Each
    (optimizer, group, device, dtype) gets its own copy instead.
    """
    update = types.FunctionType(_update.__code__.replace(), _update.__globals__, _update.__name__)
    return torch.compile(update, fullgraph=True, dynamic=False)


def compiled_step(params: list[Tensor], grads: list[Tensor], states: list[dict],
                  plans: list[ParamPlan], hp: GroupHParams, indices: list[int],
                  cache: dict) -> None:
    """The ``compile=True`` step of one param group (``foreach_step``'s contract).

    ``cache`` maps (device, dtype) to the group's compiled update; the optimizer
    keeps one such dict per group, so that graphs live and die with it.
    """
    rules = UpdateRules.of(hp)
    rows, bits = [], []
    for param, grad, state, plan, index in zip(params, grads, states, plans, indices):
        state["step"] += 1
        step = int(state["step"].item())
        refresh_if_due(grad, state, plan, hp, step, index)
        rows.append(scalar_row(step_scalars(step, plan, hp)))
        rounding = stochastic_bits(param, hp, index, step, plan.shard)  # a graph input
        bits.append(None if rounding is None else rounding.whole())
    for key, idx in group_by_device_and_dtype(params).items():
        if key not in cache:
            cache[key] = fresh_compiled_update()
        table = host_to_device(torch.tensor([rows[i] for i in idx], dtype=torch.float32),
                               key[0])
        cache[key]([params[i] for i in idx], [grads[i] for i in idx], [states[i] for i in idx],
                   [plans[i] for i in idx], table, rules, [bits[i] for i in idx])
