"""The multi-tensor (foreach) path: the reference's math with the elementwise work batched.

Per (device, dtype) bucket, ``torch._foreach_*`` calls do the step counts, weight
decay, EMA momentum, accumulators, denominators and the final update; what has no
batched form stays per tensor: projector refreshes, the subspace projections and
the Subset-Norm reductions. It must equal :func:`snsm.optim.functional.single_tensor_step`
bit for bit (tested).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

from snsm.optim.plan import GroupHParams, ParamPlan
from snsm.optim.update import (UpdateRules, apply_update_, numerator, read_accumulator,
                               refresh_if_due, step_scalars, stochastic_bits)
from snsm.rules.partition import sum_squares
from snsm.rules.quantize import read_state, stochastic_round_to_bf16, write_state_


def group_by_device_and_dtype(tensors: list[Tensor]) -> dict[tuple, list[int]]:
    """Positions of ``tensors`` per (device, dtype), in order."""
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, tensor in enumerate(tensors):
        buckets[(tensor.device, tensor.dtype)].append(i)
    return buckets


def foreach_step(params: list[Tensor], grads: list[Tensor], states: list[dict],
                 plans: list[ParamPlan], hp: GroupHParams, indices: list[int]) -> None:
    """The multi-tensor path, bucketed by (device, dtype)."""
    for idx in group_by_device_and_dtype(params).values():
        _foreach_bucket([params[i] for i in idx], [grads[i] for i in idx],
                        [states[i] for i in idx], [plans[i] for i in idx], hp,
                        [indices[i] for i in idx])


def _numerators(grads, states, plans, rules: UpdateRules, scalars) -> list[Tensor]:
    """N per parameter: EMA momenta in one batched lerp (8-bit ones dequantized before
    and requantized after, per tensor), subspace ones per tensor."""
    numers = list(grads)
    ema = [i for i, plan in enumerate(plans) if plan.momentum == "ema"]
    if ema:
        momenta = [read_state(states[i], "momentum", True, grads[i].dtype) for i in ema]
        torch._foreach_lerp_(momenta, [grads[i] for i in ema], 1 - rules.beta1)
        for i, momentum in zip(ema, momenta):
            write_state_(states[i], "momentum", momentum, True)
            numers[i] = momentum
    for i, plan in enumerate(plans):
        if plan.momentum == "subspace":
            numers[i] = numerator(grads[i], states[i], plan, rules,
                                  scalars[i].momentum_correction)
    return numers


def _accumulate(accs, grads, plans, rules: UpdateRules) -> None:
    """v <- b2 v + (1 - b2) s (ema) or v <- v + s (sum), batched over the bucket."""
    if rules.accumulator == "ema":
        torch._foreach_mul_(accs, rules.beta2)
    weight = 1.0 if rules.accumulator == "sum" else 1 - rules.beta2
    coord = [i for i, plan in enumerate(plans) if plan.partition.per_coordinate]
    subset = [i for i, plan in enumerate(plans) if not plan.partition.per_coordinate]
    if coord:
        coord_grads = [grads[i].to(accs[i].dtype) for i in coord]
        torch._foreach_addcmul_([accs[i] for i in coord], coord_grads, coord_grads, value=weight)
    if subset:
        squares = [sum_squares(grads[i], plans[i].partition, accs[i].dtype) for i in subset]
        torch._foreach_add_([accs[i] for i in subset], squares, alpha=weight)


def _denominators(accs, scalars, rules: UpdateRules) -> list[Tensor]:
    """D = sqrt(v) / sqrt(1 - b2^t) + eps, batched."""
    denoms = torch._foreach_sqrt(accs)
    if rules.corrects_denominator:
        torch._foreach_div_(denoms, [s.bias_correction2_sqrt for s in scalars])
    torch._foreach_add_(denoms, rules.eps)
    return denoms


def _foreach_bucket(params, grads, states, plans, hp: GroupHParams, indices) -> None:
    """One (device, dtype) bucket; with stochastic rounding, the update of float32 copies of
    the bf16 parameters, written back with the reference's bits."""
    step_tensors = [state["step"] for state in states]
    torch._foreach_add_(step_tensors, 1)
    steps = [int(step.item()) for step in step_tensors]
    for grad, state, plan, step, index in zip(grads, states, plans, steps, indices):
        refresh_if_due(grad, state, plan, hp, step, index)
    bits = [stochastic_bits(p, hp, index, step) for p, index, step in zip(params, indices, steps)]
    if any(b is not None for b in bits):
        masters = [param.float() for param in params]
        _update_bucket(masters, grads, states, plans, hp, steps)
        for param, master, bit in zip(params, masters, bits):
            param.copy_(stochastic_round_to_bf16(master, bit))
        return
    _update_bucket(params, grads, states, plans, hp, steps)


def _update_bucket(params, grads, states, plans, hp: GroupHParams, steps) -> None:
    """The bucket's update once its step counts and projectors are up to date."""
    rules = UpdateRules.of(hp)
    scalars = [step_scalars(step, plan, hp) for step, plan in zip(steps, plans)]
    if rules.maximize:
        grads = torch._foreach_neg(grads)
    if rules.decays:
        torch._foreach_mul_(params, scalars[0].decay)
    numers = _numerators(grads, states, plans, rules, scalars)
    if rules.accumulator == "none":
        for param, numer, s in zip(params, numers, scalars):
            apply_update_(param, numer, None, None, s.step_size)
        return
    accs = [read_accumulator(state, grad, plan.partition, rules.accumulator)
            for state, grad, plan in zip(states, grads, plans)]
    _accumulate(accs, grads, plans, rules)
    for state, acc in zip(states, accs):
        write_state_(state, "accumulator", acc, False)
    denoms = [denom.to(param.dtype)  # float32 accumulators of 16-bit parameters
              for denom, param in zip(_denominators(accs, scalars, rules), params)]
    fast = [i for i, p in enumerate(params)
            if plans[i].partition.per_coordinate or p.is_contiguous()]
    if fast:
        torch._foreach_addcdiv_(
            [params[i].view(plans[i].partition.view) for i in fast],
            [numers[i].reshape(plans[i].partition.view) for i in fast],
            [denoms[i] for i in fast], [scalars[i].step_size for i in fast])
    for i in sorted(set(range(len(params))) - set(fast)):
        apply_update_(params[i], numers[i], denoms[i], plans[i].partition, scalars[i].step_size)
