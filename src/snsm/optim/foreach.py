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

from snsm.optim.plan import GroupHParams, ParamPlan, working_dtypes
from snsm.optim.update import (UpdateRules, apply_update_, nesterov_numerator, numerator,
                               orthogonalize_numerator, refresh_if_due, step_scalars,
                               stochastic_bits)
from snsm.rules.bf16 import COMPENSATION, master_copy, uses_master, write_back_
from snsm.rules.partition import sum_squares
from snsm.rules.precision import close_states_, open_states

_16_BIT = (torch.float16, torch.bfloat16)
MASTER_PIECE = 1 << 24  # elements of bf16 parameters updated as float32 copies at a time


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


def _mul_(tensors: list[Tensor], factor: float) -> None:
    """x <- factor x for each tensor, as ``Tensor.mul_`` computes it. ``torch._foreach_mul_``
    with a Python number rounds the number to the dtype of 16-bit tensors first (on CPU,
    torch 2.x: 0.99 becomes 0.98828125 in bf16), where ``mul_`` multiplies in float32; so
    16-bit tensors are scaled one by one (the decay and beta2 would otherwise differ from
    the reference: large lr * weight_decay, or an EMA accumulator in bf16; a bucket of
    bf16 parameters mixes bf16 and float32 accumulators)."""
    batched = [tensor for tensor in tensors if tensor.dtype not in _16_BIT]
    if batched:
        torch._foreach_mul_(batched, factor)
    for tensor in tensors:
        if tensor.dtype in _16_BIT:
            tensor.mul_(factor)


def _numerators(grads, states, plans, rules: UpdateRules, scalars) -> list[Tensor]:
    """N per parameter: EMA momenta in one batched lerp, subspace ones, Nesterov and the
    orthogonalization per tensor."""
    numers = list(grads)
    ema = [i for i, plan in enumerate(plans) if plan.momentum == "ema"]
    if ema:
        momenta = [states[i]["momentum"] for i in ema]
        torch._foreach_lerp_(momenta, [grads[i] for i in ema], 1 - rules.beta1)
        for i, momentum in zip(ema, momenta):
            numers[i] = nesterov_numerator(grads[i], momentum, rules)
    for i, plan in enumerate(plans):
        if plan.momentum == "subspace":
            numers[i] = numerator(grads[i], states[i], plan, rules,
                                  scalars[i].momentum_correction)
        numers[i] = orthogonalize_numerator(numers[i], states[i], plan, rules)
    return numers


def _accumulate(accs, grads, plans, rules: UpdateRules) -> None:
    """v <- b2 v + (1 - b2) s (ema) or v <- v + s (sum), batched over the bucket."""
    if rules.accumulator == "ema":
        _mul_(accs, rules.beta2)
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
    """One (device, dtype) bucket; bf16 parameters under a ``bf16_update`` other than
    ``"nearest"``: the update of float32 copies, written back as the reference does (its
    stochastic bits, or its Kahan split; :mod:`snsm.rules.bf16`)."""
    step_tensors = [state["step"] for state in states]
    torch._foreach_add_(step_tensors, 1)
    steps = [int(step.item()) for step in step_tensors]
    for grad, state, plan, step, index in zip(grads, states, plans, steps, indices):
        refresh_if_due(grad, state, plan, hp, step, index)
    if not uses_master(params[0].dtype, hp.bf16_update):
        _update_bucket(params, grads, states, plans, hp, steps)
        return
    for piece in _pieces(params, MASTER_PIECE):  # float32 copies of a piece at a time
        masters = [master_copy(params[i], states[i].get(COMPENSATION)) for i in piece]
        _update_bucket(masters, [grads[i] for i in piece], [states[i] for i in piece],
                       [plans[i] for i in piece], hp, [steps[i] for i in piece])
        for i, master in zip(piece, masters):
            bits = stochastic_bits(params[i], hp, indices[i], steps[i], plans[i].shard)
            write_back_(params[i], master, bits, states[i].get(COMPENSATION))


def _pieces(tensors: list[Tensor], limit: int) -> list[list[int]]:
    """Consecutive positions of ``tensors`` in groups of at most ``limit`` elements (a larger
    tensor alone): the float32 copies of bf16 parameters live a group at a time."""
    pieces, size = [[]], 0
    for i, tensor in enumerate(tensors):
        if pieces[-1] and size + tensor.numel() > limit:
            pieces.append([])
            size = 0
        pieces[-1].append(i)
        size += tensor.numel()
    return [piece for piece in pieces if piece]


def _update_bucket(params, grads, states, plans, hp: GroupHParams, steps) -> None:
    """The bucket's update once its step counts and projectors are up to date, with the states
    opened as working tensors before and closed after (:mod:`snsm.rules.precision`)."""
    rules = UpdateRules.of(hp)
    if rules.maximize:
        grads = torch._foreach_neg(grads)
    working = open_states(states, [working_dtypes(grad.dtype, plan, rules.accumulator)
                                   for grad, plan in zip(grads, plans)])
    _update_working(params, grads, working, plans, hp, steps, rules)
    close_states_(states, working)


def _update_working(params, grads, states, plans, hp: GroupHParams, steps,
                    rules: UpdateRules) -> None:
    """The bucket's update on its working states."""
    scalars = [step_scalars(step, plan, hp) for step, plan in zip(steps, plans)]
    if rules.decays:
        _mul_(params, scalars[0].decay)
    numers = _numerators(grads, states, plans, rules, scalars)
    if rules.accumulator == "none":
        for param, numer, s in zip(params, numers, scalars):
            apply_update_(param, numer, None, None, s.step_size)
        return
    accs = [state["accumulator"] for state in states]
    _accumulate(accs, grads, plans, rules)
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
