"""The update p <- p*(1 - lr*wd) - lr * N / D, as a readable single-tensor loop
(the reference) and a multi-tensor (foreach) path that must match it.

Both paths call the same rule functions; the foreach path batches the
elementwise work (step counts, weight decay, EMA momentum, accumulators,
denominators, the final update) into ``torch._foreach_*`` calls per
(device, dtype), and keeps per tensor only what has no batched form: the
Subset-Norm reductions and the subspace projections.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

from snsm.optim.plan import GroupHParams, ParamPlan
from snsm.rules.partition import Partition, sum_squares
from snsm.rules.momentum import mix_seed, subspace_numerator
from snsm.rules.step_size import accumulate_, denominator


def _subspace(grad: Tensor, state: dict, plan: ParamPlan, hp: GroupHParams, index: int) -> Tensor:
    return subspace_numerator(
        grad, state, plan.projector or hp.projector, rank=hp.rank, beta1=hp.beta1,
        bias_correction=hp.bias_correction, update_gap=hp.update_gap,
        on_refresh=hp.on_refresh, seed=mix_seed(hp.seed, index))


def _numerator(grad: Tensor, state: dict, plan: ParamPlan, hp: GroupHParams, step: float,
               index: int) -> tuple[Tensor, float]:
    """N and the bias correction 1 - b1^t that still divides it (1 when already applied)."""
    if plan.momentum == "none":
        return grad, 1.0
    if plan.momentum == "ema":
        momentum = state["momentum"]
        momentum.lerp_(grad, 1 - hp.beta1)
        return momentum, hp.bias_correction1(step)
    return _subspace(grad, state, plan, hp, index), 1.0


def _addcdiv_(param: Tensor, numer: Tensor, denom: Tensor, partition: Partition,
              value: float) -> None:
    """param += value * N / D, with D broadcast over each subset of the partition."""
    if partition.per_coordinate:
        param.addcdiv_(numer, denom, value=value)
    elif param.is_contiguous():
        param.view(partition.view).addcdiv_(numer.reshape(partition.view), denom, value=value)
    else:
        param.add_((numer.reshape(partition.view) / denom).view(param.shape), alpha=value)


def single_tensor_step(params: list[Tensor], grads: list[Tensor], states: list[dict],
                       plans: list[ParamPlan], hp: GroupHParams, indices: list[int]) -> None:
    """The reference: one parameter at a time."""
    for param, grad, state, plan, index in zip(params, grads, states, plans, indices):
        state["step"] += 1
        step = state["step"].item()
        if hp.maximize:
            grad = -grad
        if hp.weight_decay:
            param.mul_(1 - hp.lr * hp.weight_decay)
        numer, bias_correction1 = _numerator(grad, state, plan, hp, step, index)
        step_size = hp.lr / bias_correction1
        if plan.partition is None:
            param.add_(numer, alpha=-step_size)
            continue
        accumulate_(state["accumulator"], grad, plan.partition, hp.accumulator, hp.beta2)
        denom = denominator(state["accumulator"], hp.bias_correction2_sqrt(step), hp.eps)
        _addcdiv_(param, numer, denom, plan.partition, -step_size)


def _group_by_device_and_dtype(params: list[Tensor]) -> dict[tuple, list[int]]:
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, param in enumerate(params):
        buckets[(param.device, param.dtype)].append(i)
    return buckets


def foreach_step(params: list[Tensor], grads: list[Tensor], states: list[dict],
                 plans: list[ParamPlan], hp: GroupHParams, indices: list[int]) -> None:
    """The multi-tensor path, bucketed by (device, dtype)."""
    for idx in _group_by_device_and_dtype(params).values():
        _foreach_bucket([params[i] for i in idx], [grads[i] for i in idx],
                        [states[i] for i in idx], [plans[i] for i in idx], hp,
                        [indices[i] for i in idx])


def _foreach_numerators(grads, states, plans, hp, steps, indices):
    numers, bias_corrections = list(grads), [1.0] * len(grads)
    ema = [i for i, plan in enumerate(plans) if plan.momentum == "ema"]
    if ema:
        torch._foreach_lerp_([states[i]["momentum"] for i in ema], [grads[i] for i in ema],
                             1 - hp.beta1)
        for i in ema:
            numers[i] = states[i]["momentum"]
            bias_corrections[i] = hp.bias_correction1(steps[i])
    for i, plan in enumerate(plans):
        if plan.momentum == "subspace":
            numers[i] = _subspace(grads[i], states[i], plan, hp, indices[i])
    return numers, bias_corrections


def _foreach_accumulate(accs, grads, plans, hp):
    """v <- b2 v + (1 - b2) s (ema) or v <- v + s (sum), batched over the bucket."""
    if hp.accumulator == "ema":
        torch._foreach_mul_(accs, hp.beta2)
    weight = 1.0 if hp.accumulator == "sum" else 1 - hp.beta2
    coord = [i for i, plan in enumerate(plans) if plan.partition.per_coordinate]
    subset = [i for i, plan in enumerate(plans) if not plan.partition.per_coordinate]
    if coord:
        coord_grads = [grads[i] for i in coord]
        torch._foreach_addcmul_([accs[i] for i in coord], coord_grads, coord_grads, value=weight)
    if subset:
        squares = [sum_squares(grads[i], plans[i].partition) for i in subset]
        torch._foreach_add_([accs[i] for i in subset], squares, alpha=weight)


def _foreach_bucket(params, grads, states, plans, hp: GroupHParams, indices):
    step_tensors = [state["step"] for state in states]
    torch._foreach_add_(step_tensors, 1)
    steps = [step.item() for step in step_tensors]
    if hp.maximize:
        grads = torch._foreach_neg(grads)
    if hp.weight_decay:
        torch._foreach_mul_(params, 1 - hp.lr * hp.weight_decay)
    numers, bias_corrections = _foreach_numerators(grads, states, plans, hp, steps, indices)
    step_sizes = [-(hp.lr / bc) for bc in bias_corrections]
    if hp.accumulator == "none":
        for param, numer, step_size in zip(params, numers, step_sizes):
            param.add_(numer, alpha=step_size)
        return
    accs = [state["accumulator"] for state in states]
    _foreach_accumulate(accs, grads, plans, hp)
    denoms = torch._foreach_sqrt(accs)
    bias_corrections2 = [hp.bias_correction2_sqrt(step) for step in steps]
    if bias_corrections2[0] is not None:
        torch._foreach_div_(denoms, bias_corrections2)
    torch._foreach_add_(denoms, hp.eps)
    fast = [i for i, p in enumerate(params)
            if plans[i].partition.per_coordinate or p.is_contiguous()]
    if fast:
        torch._foreach_addcdiv_(
            [params[i].view(plans[i].partition.view) for i in fast],
            [numers[i].reshape(plans[i].partition.view) for i in fast],
            [denoms[i] for i in fast], [step_sizes[i] for i in fast])
    for i in sorted(set(range(len(params))) - set(fast)):
        _addcdiv_(params[i], numers[i], denoms[i], plans[i].partition, step_sizes[i])
