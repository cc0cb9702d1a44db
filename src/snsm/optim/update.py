r"""One parameter's update, written once for the single-tensor, foreach and compiled paths.

For a parameter p with gradient g at its step t:

.. math::
    p \leftarrow p (1 - \eta \lambda) + s_t \, N / D, \qquad s_t = -\eta / c_t

with N from the momentum rule and D from the step-size rule (:mod:`snsm.rules`); an
orthogonalizing plan replaces N / D by NS(N) (:mod:`snsm.rules.orthogonalize`), its shape
scale a factor of s_t.
Everything that depends on the step count is a scalar of :class:`StepScalars`:
Python floats on the eager paths, tensor data on the compiled one (so neither the
step nor a scheduled lr retraces the graph). The group's fixed settings are an
:class:`UpdateRules` tuple.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
from torch import Tensor

from snsm.optim.plan import GroupHParams, ParamPlan, working_dtypes
from snsm.projectors import Projector
from snsm.rules.momentum import (as_matrix, is_refresh, mix_seed, momentum_steps,
                                 refresh_projector_, subspace_numerator)
from snsm.rules.bf16 import COMPENSATION, RoundingBits, master_copy, rounding_bits, write_back_
from snsm.rules.orthogonalize import orthogonalized_update
from snsm.rules.partition import Partition
from snsm.rules.precision import close_state_, open_state, state_rows
from snsm.rules.step_size import accumulate_, denominator


_SR = 0x5352  # salts the seeds of stochastic rounding apart from the projectors' seeds
UPDATE_PIECE = 1 << 20  # elements of a row-separable parameter updated at a time (eager)


class StepScalars(NamedTuple):
    """The step-dependent scalars of one parameter's update."""

    step_size: float | Tensor  # s_t = -lr / (1 - b1^t) for EMA momentum with bias correction
    bias_correction2_sqrt: float | Tensor | None  # sqrt(1 - b2^t), None: D is not corrected
    momentum_correction: float | Tensor | None  # 1 - b1^tau of subspace momentum, None: none
    decay: float | Tensor  # 1 - lr * weight_decay


class UpdateRules(NamedTuple):
    """A group's settings that do not change from step to step (no lr: schedulers move it)."""

    beta1: float
    beta2: float
    eps: float
    accumulator: str
    bias_correction: bool
    corrects_denominator: bool
    decays: bool
    maximize: bool
    projector: Projector
    nesterov: bool = False
    complement: str = "gradient"

    @classmethod
    def of(cls, hp: GroupHParams) -> "UpdateRules":
        return cls(hp.beta1, hp.beta2, hp.eps, hp.accumulator, hp.bias_correction,
                   hp.corrects_denominator, hp.weight_decay != 0, hp.maximize, hp.projector,
                   hp.nesterov, hp.complement)


def step_scalars(step: int, plan: ParamPlan, hp: GroupHParams) -> StepScalars:
    """The scalars of step ``step`` (in float64 Python arithmetic); an orthogonalizing plan's
    shape scale multiplies the step size (-lr * scale without bias correction, as
    torch.optim.Muon's ``-adjusted_lr``)."""
    ema_corrected = plan.momentum == "ema" and hp.bias_correction
    bias_correction1 = 1 - hp.beta1**step if ema_corrected else 1.0
    bias_correction2_sqrt = (1 - hp.beta2**step) ** 0.5 if hp.corrects_denominator else None
    momentum_correction = None
    if plan.momentum == "subspace" and hp.bias_correction:
        momentum_correction = 1 - hp.beta1**momentum_steps(step, hp.update_gap, hp.on_refresh)
    step_size = -(hp.lr / bias_correction1)
    if plan.orthogonal is not None:
        step_size *= plan.orthogonal.scale
    return StepScalars(step_size, bias_correction2_sqrt, momentum_correction,
                       1 - hp.lr * hp.weight_decay)


def stochastic_bits(param: Tensor, hp: GroupHParams, index: int, step: int,
                    shard=None) -> RoundingBits | None:
    """The random bits of step ``step``'s stochastic rounding of a bf16 parameter (seeded by
    the group's seed, the parameter's index and the step); None where it does not apply. A
    shard (FSDP2; ``shard``: its ``ShardSpec``) takes its rows' bits of the whole parameter's,
    elements ``[start n, stop n)`` of ``prod(shape)`` (n: a row's elements), so that every
    rank rounds as one process would."""
    if not (hp.bf16_update == "stochastic" and param.dtype == torch.bfloat16):
        return None
    seed = mix_seed(hp.seed, index, step, _SR)
    if shard is None:
        return rounding_bits(tuple(param.shape), param.device, seed)
    row = math.prod(shard.shape[1:])
    return rounding_bits(tuple(param.shape), param.device, seed, shard.start * row,
                         math.prod(shard.shape))


def refresh_if_due(grad: Tensor, state: dict, plan: ParamPlan, hp: GroupHParams, step: int,
                   index: int) -> None:
    """Rebuild a subspace projector on its refresh steps (1, 1 + gap, ...); eager only. The
    refresh sees the state as working tensors (:mod:`snsm.rules.precision`)."""
    if plan.momentum == "subspace" and is_refresh(step, hp.update_gap):
        grad2d = as_matrix(-grad if hp.maximize else grad)
        working = open_state(state, working_dtypes(grad2d.dtype, plan, hp.accumulator))
        refresh_projector_(grad2d, working, plan.projector or hp.projector, hp.rank,
                           hp.on_refresh, mix_seed(hp.seed, index), step)
        close_state_(state, working)


def numerator(grad: Tensor, state: dict, plan: ParamPlan, rules: UpdateRules,
              momentum_correction: float | Tensor | None) -> Tensor:
    """N: g (no momentum), the EMA m (its correction is in the step size; with Nesterov
    g.lerp(m, b1)), or the subspace numerator (:func:`snsm.rules.momentum.subspace_numerator`)."""
    if plan.momentum == "none":
        return grad
    if plan.momentum == "ema":
        return nesterov_numerator(grad, state["momentum"].lerp_(grad, 1 - rules.beta1), rules)
    return subspace_numerator(grad, state, plan.projector or rules.projector, rules.beta1,
                              momentum_correction, rules.nesterov, rules.complement)


def nesterov_numerator(grad: Tensor, momentum: Tensor, rules: UpdateRules) -> Tensor:
    """N of EMA momentum: m, or with Nesterov g.lerp(m, b1) (torch.optim.Muon's form)."""
    return grad.lerp(momentum, rules.beta1) if rules.nesterov else momentum


def orthogonalize_numerator(numer: Tensor, state: dict, plan: ParamPlan,
                            rules: UpdateRules) -> Tensor:
    """NS(N) (and its second moment) under an orthogonalizing plan; else N as it is. A shard
    (FSDP2) gathers the whole N from every rank's rows, orthogonalizes it as one process would
    (its second moment replicated) and keeps its own rows."""
    if plan.orthogonal is None:
        return numer
    shard = plan.shard
    if shard is None:
        return orthogonalized_update(numer, state, plan.orthogonal, rules.beta2, rules.eps)
    whole = shard.gather(numer.contiguous(), (0, shard.shape[0]))
    update = orthogonalized_update(whole, state, plan.orthogonal, rules.beta2, rules.eps)
    return update[shard.start:shard.stop]


def apply_update_(param: Tensor, numer: Tensor, denom: Tensor | None,
                  partition: Partition | None, step_size: float | Tensor) -> None:
    """param += step_size * N / D, with D broadcast over each subset (D = 1 when None).

    A tensor ``step_size`` (the compiled path) multiplies; ``addcdiv_`` takes numbers only.
    """
    as_data = isinstance(step_size, Tensor)
    if denom is None:
        if as_data:
            param.add_(numer * step_size)
        else:
            param.add_(numer, alpha=step_size)
    elif as_data:
        param.add_((numer.reshape(partition.view) / denom * step_size).view(param.shape))
    elif partition.per_coordinate:
        param.addcdiv_(numer, denom, value=step_size)
    elif param.is_contiguous():
        param.view(partition.view).addcdiv_(numer.reshape(partition.view), denom,
                                            value=step_size)
    else:
        param.add_((numer.reshape(partition.view) / denom).view(param.shape), alpha=step_size)


def update_parameter_(param: Tensor, grad: Tensor, state: dict, plan: ParamPlan,
                      scalars: StepScalars, rules: UpdateRules,
                      bits: Tensor | None = None) -> None:
    """p <- p (1 - lr wd) + s_t N / D for one parameter whose step count and projector
    are already up to date. A bf16 parameter with ``bits`` (:func:`stochastic_bits`) or a
    Kahan compensation in its state is updated as a float32 copy and written back by its
    ``bf16_update`` rule (:mod:`snsm.rules.bf16`). The rules see the state as working
    tensors: 8-bit keys are dequantized before and requantized after, here only
    (:mod:`snsm.rules.precision`). A large row-separable parameter is updated a piece of
    rows at a time (:func:`update_in_row_pieces_`)."""
    if update_in_row_pieces_(param, grad, state, plan, scalars, rules, bits):
        return
    compensation = state.get(COMPENSATION)
    if param.dtype == torch.bfloat16 and (bits is not None or compensation is not None):
        master = master_copy(param, compensation)
        update_parameter_(master, grad, state, plan, scalars, rules)
        write_back_(param, master, bits, compensation)
        return
    if rules.maximize:
        grad = -grad
    working = open_state(state, working_dtypes(grad.dtype, plan, rules.accumulator))
    if rules.decays:
        param.mul_(scalars.decay)
    numer = numerator(grad, working, plan, rules, scalars.momentum_correction)
    numer = orthogonalize_numerator(numer, working, plan, rules)
    denom = None
    if plan.partition is not None:
        acc = working["accumulator"]
        accumulate_(acc, grad, plan.partition, rules.accumulator, rules.beta2)
        denom = denominator(acc, scalars.bias_correction2_sqrt,
                            rules.eps).to(param.dtype)  # a float32 accumulator (16-bit param)
    apply_update_(param, numer, denom, plan.partition, scalars.step_size)
    close_state_(state, working)


def row_separable(param: Tensor, plan: ParamPlan) -> bool:
    """Whether each row of the update depends on that row only: no momentum or EMA
    momentum, D per coordinate or none, no orthogonalization (a parameter of 2+ dims)."""
    return (param.dim() >= 2 and plan.momentum in ("none", "ema") and plan.orthogonal is None
            and (plan.partition is None or plan.partition.per_coordinate))


def update_in_row_pieces_(param: Tensor, grad: Tensor, state: dict, plan: ParamPlan,
                          scalars: StepScalars, rules: UpdateRules,
                          bits: RoundingBits | Tensor | None) -> bool:
    """Update a row-separable parameter of more than ``UPDATE_PIECE`` elements a piece of
    whole rows at a time (eager paths only), so that its float32 copy (bf16), its working
    8-bit state and its temporaries are those of a piece, not of the parameter; each piece
    rounds with its own elements' bits, so the result is the whole update's, bit for bit.
    False (nothing done) where it does not apply."""
    rows = param.shape[0] if param.dim() else 0
    step = max(1, UPDATE_PIECE // max(1, param[0].numel())) if rows else 0
    if (not row_separable(param, plan) or step >= rows or isinstance(bits, Tensor)
            or isinstance(scalars.step_size, Tensor)):
        return False
    pieces = [slice(start, start + step) for start in range(0, rows, step)]
    states = [state_rows(state, rows, piece) for piece in pieces]
    if any(part is None for part in states):
        return False
    row_numel = param[0].numel()
    for piece, part in zip(pieces, states):
        shape = param[piece].shape
        piece_plan = plan if plan.partition is None else dataclasses.replace(
            plan, partition=Partition(tuple(shape), ()))
        piece_bits = None if bits is None else bits.part(piece.start * row_numel, shape)
        update_parameter_(param[piece], grad[piece], part, piece_plan, scalars, rules,
                          piece_bits)
    return True
