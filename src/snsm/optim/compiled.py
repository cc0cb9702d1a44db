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

The math is the eager reference's, rule for rule (:mod:`snsm.rules`); the
compiled update agrees with it to float32 rounding (tested), not bit for bit,
since inductor fuses and reorders the elementwise work. Dynamo keeps at most
``torch._dynamo.config.recompile_limit`` graphs (8) of one function per process,
so a process holding many compiled optimizers falls back to eager (dynamo warns)
after the 8th (group, device, dtype).
"""

from __future__ import annotations

import types
from typing import Callable

import torch
from torch import Tensor

from snsm.optim.plan import GroupHParams, ParamPlan
from snsm.rules.momentum import as_matrix, is_refresh, mix_seed, momentum_steps, refresh_projector_
from snsm.rules.partition import Partition
from snsm.rules.step_size import accumulate_, denominator

# Columns of the per-parameter scalar table.
STEP_SIZE, BIAS_CORRECTION2_SQRT, SUBSPACE_BIAS_CORRECTION, DECAY = range(4)


def step_scalars(step: int, plan: ParamPlan, hp: GroupHParams) -> tuple[float, ...]:
    """One row of the scalar table for a parameter at step ``step`` (see the module doc)."""
    ema = plan.momentum == "ema"
    bias_correction1 = hp.bias_correction1(step) if ema else 1.0
    bias_correction2_sqrt = hp.bias_correction2_sqrt(step)
    subspace_correction = 1.0
    if plan.momentum == "subspace" and hp.bias_correction:
        tau = momentum_steps(step, hp.update_gap, hp.on_refresh)
        subspace_correction = 1 - hp.beta1**tau
    return (-hp.lr / bias_correction1,
            1.0 if bias_correction2_sqrt is None else bias_correction2_sqrt,
            subspace_correction, 1 - hp.lr * hp.weight_decay)


def _refresh_due_projectors(grads: list[Tensor], states: list[dict], plans: list[ParamPlan],
                            steps: list[int], hp: GroupHParams, indices: list[int]) -> None:
    """Eager: rebuild the projectors whose refresh falls on this step."""
    for grad, state, plan, step, index in zip(grads, states, plans, steps, indices):
        if plan.momentum == "subspace" and is_refresh(step, hp.update_gap):
            grad2d = as_matrix(-grad if hp.maximize else grad)
            refresh_projector_(grad2d, state, plan.projector or hp.projector, hp.rank,
                               hp.on_refresh, mix_seed(hp.seed, index))


def _subspace_numerator(grad: Tensor, state: dict, projector, beta1: float,
                        correction: Tensor | None) -> Tensor:
    """N = g + P^T(m_hat - P(g)), the projector already refreshed (traced)."""
    grad2d = as_matrix(grad)
    low = projector.project(grad2d, state)
    momentum = state["momentum"]
    momentum.lerp_(low, 1 - beta1)
    m_hat = momentum if correction is None else momentum / correction
    numerator = grad2d.clone(memory_format=torch.contiguous_format)
    projector.back_add_(numerator, m_hat - low, state)
    return numerator.view(grad.shape)


def _add_ratio_(param: Tensor, numer: Tensor, denom: Tensor, partition: Partition,
                step_size: Tensor) -> None:
    """param += step_size * N / D, with D broadcast over each subset (traced)."""
    if partition.per_coordinate:
        param.add_(numer / denom * step_size)
    else:
        update = numer.reshape(partition.view) / denom * step_size
        param.add_(update.view(param.shape))


def _update(params: list[Tensor], grads: list[Tensor], states: list[dict],
            plans: list[ParamPlan], scalars: Tensor, consts: tuple) -> None:
    """The pure tensor math of one bucket; ``consts`` are the group's fixed hyperparameters."""
    beta1, beta2, eps, accumulator, bias_correction, corrects_denominator, decays, maximize, \
        group_projector = consts
    for i, (param, grad, state, plan) in enumerate(zip(params, grads, states, plans)):
        row = scalars[i]
        if maximize:
            grad = -grad
        if decays:
            param.mul_(row[DECAY])
        if plan.momentum == "none":
            numer = grad
        elif plan.momentum == "ema":
            numer = state["momentum"].lerp_(grad, 1 - beta1)
        else:
            correction = row[SUBSPACE_BIAS_CORRECTION] if bias_correction else None
            numer = _subspace_numerator(grad, state, plan.projector or group_projector, beta1,
                                        correction)
        if plan.partition is None:
            param.add_(numer * row[STEP_SIZE])
            continue
        accumulate_(state["accumulator"], grad, plan.partition, accumulator, beta2)
        denom = denominator(state["accumulator"],
                            row[BIAS_CORRECTION2_SQRT] if corrects_denominator else None, eps)
        _add_ratio_(param, numer, denom, plan.partition, row[STEP_SIZE])


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
    for state in states:
        state["step"] += 1
    steps = [int(state["step"].item()) for state in states]
    _refresh_due_projectors(grads, states, plans, steps, hp, indices)
    consts = (hp.beta1, hp.beta2, hp.eps, hp.accumulator, hp.bias_correction,
              hp.bias_correction2_sqrt(1) is not None, hp.weight_decay != 0, hp.maximize,
              hp.projector)
    buckets: dict[tuple, list[int]] = {}
    for i, param in enumerate(params):
        buckets.setdefault((param.device, param.dtype), []).append(i)
    for key, idx in buckets.items():
        if key not in cache:
            cache[key] = fresh_compiled_update()
        rows = [step_scalars(steps[i], plans[i], hp) for i in idx]
        scalars = torch.tensor(rows, dtype=torch.float32).to(key[0], non_blocking=True)
        cache[key]([params[i] for i in idx], [grads[i] for i in idx], [states[i] for i in idx],
                   [plans[i] for i in idx], scalars, consts)
