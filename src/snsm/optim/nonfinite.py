"""Non-finite gradients: the check before a step, and the skip of ``skip_nonfinite``.

Every step first checks that all gradients are finite. With a non-finite one nothing changes
and the step raises :class:`NonFiniteGradientError` or, with ``skip_nonfinite``, is skipped
and counted (:class:`SkipCount`): on the host with a warning, or on the device without a host
sync (:func:`finite_on_device` and :func:`gated_update`).
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from torch import Tensor

from snsm.optim.functional import snsm_update
from snsm.optim.plan import GroupHParams
from snsm.optim.sharding import is_dtensor

logger = logging.getLogger(__name__)


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds inf or NaN; the optimizer changed nothing."""


def all_finite(grads: list[Tensor]) -> bool:
    """Whether every gradient is finite: one flag per device, one host sync each; the local
    shards of DTensors are checked and the verdict all-reduced, so every rank agrees."""
    flags: dict[torch.device, list[Tensor]] = {}
    sharded = False
    for grad in grads:
        if is_dtensor(grad):
            grad, sharded = grad.to_local(), True
        flags.setdefault(grad.device, []).append(finite_flag(grad))
    finite = torch.tensor([bool(torch.stack(f).all()) for f in flags.values()]).all()
    if sharded and dist.is_available() and dist.is_initialized():
        verdict = finite.to(torch.int32).to(next(iter(flags)))
        dist.all_reduce(verdict, op=dist.ReduceOp.MIN)
        return bool(verdict)
    return bool(finite)


def finite_flag(grad: Tensor) -> Tensor:
    """A 0-dim bool tensor: whether ``grad`` holds no inf or NaN. Its min and max are finite
    exactly then (both propagate a NaN, and an inf is one of them): one reduction pass, where
    ``isfinite(grad).all()`` makes several (about 50x slower on the CPU)."""
    if grad.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=grad.device)
    if grad.is_complex():
        return torch.isfinite(grad).all()
    return torch.isfinite(torch.stack(torch.aminmax(grad))).all()


def on_device(grads: list[Tensor]) -> bool:
    """Whether every gradient (a DTensor's local shard) lives off the CPU, where reading a
    verdict on the host is a host-device sync."""
    return bool(grads) and all((g.to_local() if is_dtensor(g) else g).device.type != "cpu"
                               for g in grads)


def finite_on_device(grads: list[Tensor]) -> Tensor:
    """A 0-dim bool tensor on the first gradient's device: whether every gradient is finite,
    computed without a host sync (several devices' flags are copied device to device; the
    local shards of DTensors are checked and the verdict all-reduced on the device)."""
    flags, sharded = [], False
    for grad in grads:
        if is_dtensor(grad):
            grad, sharded = grad.to_local(), True
        flags.append(torch.isfinite(grad).all())
    device = flags[0].device
    finite = torch.stack([flag.to(device, non_blocking=True) for flag in flags]).all()
    if sharded and dist.is_available() and dist.is_initialized():
        verdict = finite.to(torch.int32)
        dist.all_reduce(verdict, op=dist.ReduceOp.MIN)
        finite = verdict.bool()
    return finite


class SkipCount:
    """Steps skipped for non-finite gradients: a host count, plus a device count where the skip
    is decided on the device (``skip_nonfinite`` on CUDA: counted there without a host sync).

    Informational: ``deepcopy`` and pickle carry it with the optimizer; ``state_dict`` does
    not (a freshly built optimizer counts from 0, and ``load_state_dict`` keeps the loading
    optimizer's count)."""

    def __init__(self, host: int = 0):
        self.host = host
        self.device: Tensor | None = None

    def add_on_host(self) -> None:
        self.host += 1

    def add_on_device(self, finite: Tensor) -> None:
        """count += not finite, on the device of ``finite`` (no host sync)."""
        count = self.device
        if count is None:
            count = torch.zeros((), dtype=torch.int64, device=finite.device)
        elif count.device != finite.device:
            count = count.to(finite.device)
        self.device = count.add_(finite.logical_not())

    @property
    def total(self) -> int:
        """The count; reading a device count waits for the device."""
        return self.host if self.device is None else self.host + int(self.device)


def check_gradients(named: list[tuple[int, Tensor]], skip_nonfinite: bool, count: SkipCount,
                    owner: str) -> bool | Tensor:
    """Check every (parameter index, gradient) of ``named`` before anything changes: RuntimeError for a
    sparse or complex one; for a non-finite one, False (skip, counted in ``count``) or
    :class:`NonFiniteGradientError`. With ``skip_nonfinite`` and every gradient off the CPU,
    no host verdict: the 0-dim bool tensor of :func:`finite_on_device`, which gates the step
    on the device (:func:`gated_update`; the caller counts it)."""
    for index, grad in named:
        kind = "sparse" if grad.is_sparse else "complex" if grad.is_complex() else None
        if kind:
            raise RuntimeError(f"{owner} does not support {kind} gradients "
                               f"(parameter {index}); nothing was updated")
    grads = [grad for _, grad in named]
    if skip_nonfinite and on_device(grads):
        return finite_on_device(grads)
    if all_finite(grads):
        return True
    bad = next(i for i, grad in named if not all_finite([grad]))
    if skip_nonfinite:
        count.add_on_host()
        logger.warning("non-finite gradient in parameter %d: step skipped (%d so far)",
                       bad, count.total)
        return False
    raise NonFiniteGradientError(
        f"non-finite gradient (inf or NaN) in parameter {bad}; nothing was updated. "
        f"Pass skip_nonfinite=True to skip such steps instead")


def gated_update(params: list[Tensor], grads: list[Tensor], states: list[dict],
                 plans: list, hp: GroupHParams, indices: list[int], foreach: bool,
                 finite: Tensor) -> None:
    r"""The step of ``skip_nonfinite`` on a device, skipped there without a host sync.

    Parameter by parameter: snapshot p and its state, step on the gradient (zeros where
    the flag is false), then keep :math:`x \leftarrow \mathrm{where}(f, x_{new},
    x_{old})` for p and every state tensor, f the device flag of :func:`finite_on_device`.
    With f true the result is the ungated step's (bit for bit on the CPU, tested). The cost:
    a copy and a select of each parameter and state tensor (one parameter's worth of memory
    at a time), and eager steps (``compile`` is not used here). The step count lives on the
    host, so it advances on a skipped step too (bias corrections and the refresh schedule
    count it).
    """
    for param, grad, state, plan, index in zip(params, grads, states, plans, indices):
        old_param = param.clone()
        old_state = {key: value.clone() for key, value in state.items()
                     if isinstance(value, Tensor) and key != "step"}
        grad = torch.where(finite, grad, 0)  # a skipped step refreshes on zeros, not NaN
        snsm_update([param], [grad], [state], [plan], hp, [index], foreach=foreach)
        param.copy_(torch.where(finite, param, old_param))
        for key, old in old_state.items():
            state[key].copy_(torch.where(finite, state[key], old))
