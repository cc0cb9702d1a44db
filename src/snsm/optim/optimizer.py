"""``SNSM``: the generic optimizer every named optimizer here is built on."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Iterable

import torch
import torch.distributed as dist
from torch import Tensor

from snsm.optim.functional import snsm_update
from snsm.optim.plan import GroupHParams, state_layout
from snsm.optim.sharding import (ShardSpec, is_dtensor, needs_collectives, unwrap_state_dict,
                                 warn_compile_is_eager, wrap_state_dict)
from snsm.projectors import PROJECTORS
from snsm.rules import ACCUMULATORS, MOMENTUM_RULES, REFRESH_RULES, SUBSET_RULES
from snsm.rules.bf16 import BF16_UPDATES, resolve_bf16_update
from snsm.rules.quantize import STATE_PRECISIONS
from snsm import checks as check

logger = logging.getLogger(__name__)

# Group keys torch or common tooling may add besides the hyperparameters.
_EXTRA_GROUP_KEYS = frozenset({"params", "name", "initial_lr"})


def check_subset_size(value: Any) -> int | str:
    """A positive int or one of the named rules."""
    if isinstance(value, str) and value in SUBSET_RULES:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(
        f"subset_size must be a positive int or one of {', '.join(map(repr, SUBSET_RULES))}; "
        f"got {value!r}")


def check_hyperparameters(hparams: dict) -> None:
    """Validate every hyperparameter present in ``hparams`` (a group or the defaults)."""
    checks: dict[str, Callable[[Any], Any]] = {
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
        "stochastic_rounding": lambda v: check.check_bool("stochastic_rounding", v,
                                                          allow_none=True),
    }
    for key, value in hparams.items():
        if key in checks:
            checks[key](value)


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
        flags.setdefault(grad.device, []).append(torch.isfinite(grad).all())
    finite = torch.tensor([bool(torch.stack(f).all()) for f in flags.values()]).all()
    if sharded and dist.is_available() and dist.is_initialized():
        verdict = finite.to(torch.int32).to(next(iter(flags)))
        dist.all_reduce(verdict, op=dist.ReduceOp.MIN)
        return bool(verdict)
    return bool(finite)


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


# Group settings that decide the rules and the state's shapes: a state saved under other
# values cannot be loaded into this optimizer.
STRUCTURAL_KEYS = ("momentum", "accumulator", "subset_size", "rank", "projector", "use_snsm",
                   "state_precision")


def check_same_structure(index: int, saved: dict, group: dict) -> None:
    """ValueError naming the first structural key whose saved value differs from the group's;
    ``bf16_update`` counts where the group has bf16 parameters and one side is ``"kahan"``
    (the compensation buffers exist on that side only)."""
    for key in STRUCTURAL_KEYS:
        if key in saved and saved[key] != group[key]:
            raise ValueError(
                f"cannot load the optimizer state: param group {index} was saved with "
                f"{key}={saved[key]!r}, this optimizer has {key}={group[key]!r}")
    kahan = [g.get("bf16_update") == "kahan" for g in (saved, group)]
    if kahan[0] != kahan[1] and any(p.dtype == torch.bfloat16 for p in group["params"]):
        raise ValueError(
            f"cannot load the optimizer state: param group {index} was saved with "
            f"bf16_update={saved.get('bf16_update')!r}, this optimizer has "
            f"bf16_update={group['bf16_update']!r} (only 'kahan' keeps a compensation per "
            f"bf16 parameter)")


def check_state_shapes(pid: int, state: dict, layout: dict) -> None:
    """ValueError unless the saved state of parameter ``pid`` has the layout's keys and shapes."""
    if set(state) != set(layout):
        raise ValueError(f"cannot load the optimizer state: parameter {pid} has state keys "
                         f"{sorted(state)}, this optimizer allocates {sorted(layout)}")
    for key, value in state.items():
        if isinstance(value, Tensor) and tuple(value.shape) != tuple(layout[key][0]):
            raise ValueError(f"cannot load the optimizer state: parameter {pid} has {key} of "
                             f"shape {tuple(value.shape)}, this optimizer's is "
                             f"{tuple(layout[key][0])}")


class SNSM(torch.optim.Optimizer):
    r"""Subset-Norm step sizes and Subspace-Momentum, as one configurable optimizer.

    For a parameter p with gradient g at its step t:

    .. math::
        p \leftarrow p (1 - \eta \lambda) - \eta \, N / D

    where the momentum rule gives N (``momentum``: ``"none"``, ``"ema"`` or
    ``"subspace"``) and the step-size rule gives D (``accumulator``: ``"none"``
    for D = 1, ``"sum"`` for AdaGrad, ``"ema"`` for Adam/RMSprop; ``subset_size``
    picks the partition, 1 meaning per coordinate). See :mod:`snsm.rules`.

    Subset-Norm and Subspace-Momentum act only in the matrix group
    (``use_snsm=True``, the default), and Subspace-Momentum only on tensors of 2+
    dims; other tensors, and the plain group (``use_snsm=False``), get the group's
    per-coordinate rule. :func:`snsm.param_groups` routes a model's ``nn.Linear``
    weights to the matrix group and the rest to the plain group.

    Because the Subset-Norm accumulator sums the squares of a subset, its
    learning rate is about 10x Adam's (the paper: 5e-2 against 5e-3 at 60M).

    Args:
        params: parameters or param groups.
        lr: learning rate (>= 0).
        betas: (beta1, beta2) for the momentum and the EMA accumulator, each in [0, 1).
        eps: added to sqrt(v_hat).
        weight_decay: decoupled, p <- p (1 - lr * weight_decay).
        momentum: ``"none"``, ``"ema"`` or ``"subspace"``.
        accumulator: ``"none"``, ``"sum"`` or ``"ema"``.
        bias_correction: divide EMAs by 1 - beta^t (never applied to a sum).
        subset_size: ``"heuristic"``, ``"sqrt"``, ``"tensor"`` or a positive int.
        rank: rank r of the momentum subspace (clamped to the matrix side it reduces).
        projector: ``"svd"``, ``"rsvd"``, ``"uniform"``, ``"topk"``, ``"srht"`` or ``"gaussian"``.
        update_gap: steps between projector refreshes (>= 1).
        on_refresh: ``"reset"`` the momentum or ``"project"`` it into the new basis.
        seed: seed of the random projectors; draws never touch the global RNG.
        use_snsm: whether Subset-Norm and Subspace-Momentum are on in a group.
        state_precision: ``"full"`` or ``"8bit"``: the momentum (also the low-rank
            subspace one) and per-coordinate accumulators as uint8 codes with a float32
            absmax per block of 256 (:mod:`snsm.rules.quantize`); Subset-Norm
            accumulators and projector bases stay full precision.
        foreach: use the multi-tensor path (default: on CUDA tensors only).
        maximize: maximize the objective instead of minimizing it.
        compile: run the update math through ``torch.compile`` (projector refreshes
            and step bookkeeping stay eager; ``foreach`` is then ignored). See
            :mod:`snsm.optim.compiled`.
        bf16_update: how the update reaches a bf16 parameter (no effect on other dtypes;
            :mod:`snsm.rules.bf16`): ``"stochastic"`` (the default: computed in float32 and
            written back with unbiased stochastic rounding, bits from a generator seeded by
            ``seed``, the parameter's index and the step, never the global RNG; under FSDP2
            each shard draws its own), ``"kahan"`` (a bf16 compensation per parameter in the
            state, 2 bytes per element, keeps the low bits: deterministic) or ``"nearest"``
            (rounded to nearest, as plain PyTorch: updates below half a bf16 spacing are
            lost and training stalls).
        stochastic_rounding: the older spelling: True is ``bf16_update="stochastic"``, False
            is another rule; a value that contradicts ``bf16_update`` raises ValueError.
        skip_nonfinite: every step first checks that all gradients are finite (one read of
            the gradients). With a non-finite one, nothing is changed and the step raises
            :class:`NonFiniteGradientError` (a verdict the host must read before the first
            write: one host sync on CUDA), or with ``skip_nonfinite=True`` is skipped and
            counted in ``skipped_steps``: on the CPU with a warning; on CUDA on the device,
            without a host sync and without a warning (:func:`gated_update`: the step
            count advances there, and the gated step costs a copy of each tensor).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-2,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, *, momentum: str = "subspace",
                 accumulator: str = "ema", bias_correction: bool = True,
                 subset_size: int | str = "heuristic", rank: int = 128, projector: str = "svd",
                 update_gap: int = 200, on_refresh: str = "reset", seed: int = 0,
                 use_snsm: bool = True, state_precision: str = "full",
                 foreach: bool | None = None, maximize: bool = False,
                 compile: bool = False, bf16_update: str = "stochastic",
                 stochastic_rounding: bool | None = None, skip_nonfinite: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        eps=eps, weight_decay=weight_decay, momentum=momentum,
                        accumulator=accumulator, bias_correction=bias_correction,
                        subset_size=subset_size, rank=rank, projector=projector,
                        update_gap=update_gap, on_refresh=on_refresh, seed=seed,
                        use_snsm=use_snsm, state_precision=state_precision, foreach=foreach,
                        maximize=maximize, compile=compile, bf16_update=bf16_update)
        check_hyperparameters({**defaults, "stochastic_rounding": stochastic_rounding})
        defaults["bf16_update"] = resolve_bf16_update(bf16_update, stochastic_rounding)
        self.skip_nonfinite = check.check_bool("skip_nonfinite", skip_nonfinite)
        self._skipped = 0  # steps skipped on the host (not in state_dict)
        self._skipped_on_device: Tensor | None = None  # counted on the device
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        unknown = set(param_group) - set(self.defaults) - _EXTRA_GROUP_KEYS
        if unknown:
            raise ValueError(
                f"unknown param group key(s) {sorted(unknown)}; valid keys: "
                f"{sorted(set(self.defaults) | {'params', 'name'})}")
        check_hyperparameters(param_group)
        params = param_group["params"]
        if not isinstance(params, set):  # torch refuses sets (unordered) with its own error
            params = [params] if isinstance(params, Tensor) else list(params)
            param_group = {**param_group, "params": params}
            for param in params:
                if isinstance(param, Tensor) and param.is_complex():
                    raise ValueError(f"{type(self).__name__} does not support complex "
                                     f"parameters (got one of dtype {param.dtype})")
        super().add_param_group(param_group)

    def __setstate__(self, state: dict) -> None:
        """Fill the group keys a state dict saved before they existed (``compile``, ...)
        with this optimizer's defaults, once at load time rather than in every step; a
        saved ``stochastic_rounding`` flag becomes its ``bf16_update``."""
        super().__setstate__(state)
        for group in self.param_groups:
            legacy = group.pop("stochastic_rounding", None)
            if legacy is not None:
                group.setdefault("bf16_update", "stochastic" if legacy else "nearest")
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def state_dict(self) -> dict:
        """As ``torch.optim.Optimizer.state_dict``; the state of a parameter sharded on dim 0
        (FSDP2) holds DTensors for its keys sharded like it (see :mod:`snsm.optim.sharding`)."""
        return wrap_state_dict(self, super().state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        """As ``torch.optim.Optimizer.load_state_dict``, with three differences.

        * It refuses (ValueError naming the group, the key and both values) a state
          whose structural settings differ from this optimizer's (:data:`STRUCTURAL_KEYS`:
          the rules and the state's shapes follow from them), and any state tensor whose
          shape is not the one this optimizer allocates. The other settings (lr, betas,
          eps, weight decay, ...) are taken from the state dict, as torch does.
        * State tensors get the dtypes of this optimizer's layout, where torch casts them
          all to the parameter's: projector indices stay integers, and the float32
          accumulators of 16-bit parameters stay float32.
        * DTensors are loaded as their local shards.
        """
        state_dict = unwrap_state_dict(state_dict)
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) == len(self.param_groups):
            for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
                check_same_structure(index, saved, group)
        pairs = [(pid, param) for saved, group in zip(saved_groups, self.param_groups)
                 for pid, param in zip(saved["params"], group["params"])]
        layouts = {pid: self._layout(param, group)
                   for saved, group in zip(saved_groups, self.param_groups)
                   for pid, param in zip(saved["params"], group["params"])
                   if pid in state_dict["state"]}
        for pid, layout in layouts.items():
            check_state_shapes(pid, state_dict["state"][pid], layout)
        steps_only = {**state_dict, "state": {
            pid: {k: v for k, v in state.items() if k == "step"}
            for pid, state in state_dict["state"].items()}}
        super().load_state_dict(steps_only)
        for pid, param in pairs:
            for key, value in state_dict["state"].get(pid, {}).items():
                if key != "step":
                    self.state[param][key] = value.to(device=param.device,
                                                      dtype=layouts[pid][key][1])

    def _layout(self, param: Tensor, group: dict) -> dict:
        hp = GroupHParams.from_group(group)
        shard = ShardSpec.of(param)
        return (state_layout(tuple(param.shape), param.dtype, hp) if shard is None
                else shard.state_layout(param.dtype, hp))

    def _init_state(self, param: Tensor, group: dict) -> dict:
        state = {}
        for key, (shape, dtype) in self._layout(param, group).items():
            device = "cpu" if key == "step" else param.device
            state[key] = torch.zeros(shape, dtype=dtype, device=device)
        return state

    @torch.no_grad()
    def init_state(self) -> None:
        """Allocate the zero state of every parameter that has none, without stepping.

        For loading a checkpoint into a fresh optimizer: ``torch.distributed.checkpoint``
        needs state to load into and otherwise steps on zero gradients to create it,
        which would rebuild every projector (an SVD per matrix) for nothing.
        """
        for group in self.param_groups:
            for param in group["params"]:
                if not self.state.get(param):
                    self.state[param] = self._init_state(param, group)

    def _prepare(self, param: Tensor, grad: Tensor, group: dict, hp: GroupHParams) -> tuple:
        """(parameter, gradient, state, plan) of one parameter, its state allocated on first
        use; a shard of an FSDP2 parameter steps on its local rows."""
        if not self.state.get(param):
            self.state[param] = self._init_state(param, group)
        shard = ShardSpec.of(param)
        if shard is None:
            return param, grad, self.state[param], hp.plan(tuple(param.shape))
        return shard.local(param), shard.local(grad), self.state[param], shard.plan(hp)

    def _gather(self, group: dict, hp: GroupHParams, first_index: int):
        """Columns (params, grads, states, plans, indices) of a group's parameters with
        gradients."""
        rows = [(*self._prepare(param, param.grad, group, hp), first_index + offset)
                for offset, param in enumerate(group["params"]) if param.grad is not None]
        return tuple(map(list, zip(*rows))) if rows else ([], [], [], [], [])

    @property
    def skipped_steps(self) -> int:
        """Steps skipped for non-finite gradients (not in the state dict); reading the count
        of a device-side skip (``skip_nonfinite`` on CUDA) waits for the device."""
        on_device_count = self.__dict__.get("_skipped_on_device")
        host = self.__dict__.get("_skipped", 0)
        return host if on_device_count is None else host + int(on_device_count)

    def _gradients_are_usable(self) -> bool | Tensor:
        """Check every gradient before anything changes: RuntimeError for a sparse or
        complex one; for a non-finite one, False (skip) or NonFiniteGradientError. With
        ``skip_nonfinite`` and every gradient off the CPU, no host verdict: the 0-dim bool
        tensor :func:`finite_on_device`, which gates the step on the device."""
        named = [(i, p.grad) for i, p in enumerate(p for g in self.param_groups
                                                   for p in g["params"]) if p.grad is not None]
        for index, grad in named:
            kind = "sparse" if grad.is_sparse else "complex" if grad.is_complex() else None
            if kind:
                raise RuntimeError(f"{type(self).__name__} does not support {kind} gradients "
                                   f"(parameter {index}); nothing was updated")
        grads = [grad for _, grad in named]
        if self.__dict__.get("skip_nonfinite") and on_device(grads):  # lost by deepcopy
            return finite_on_device(grads)
        if all_finite(grads):
            return True
        bad = next(i for i, grad in named if not all_finite([grad]))
        if self.skip_nonfinite:
            self._skipped += 1
            logger.warning("non-finite gradient in parameter %d: step skipped (%d so far)",
                           bad, self.skipped_steps)
            return False
        raise NonFiniteGradientError(
            f"non-finite gradient (inf or NaN) in parameter {bad}; nothing was updated. "
            f"Pass skip_nonfinite=True to skip such steps instead")

    def _position(self, param: Tensor) -> tuple[dict, int]:
        """The group of ``param`` and its index in the optimizer (which seeds its projector)."""
        positions = self.__dict__.get("_positions")
        if positions is None or id(param) not in positions:
            params = [(g, p) for g in self.param_groups for p in g["params"]]
            positions = {id(p): (g, i) for i, (g, p) in enumerate(params)}
            self.__dict__["_positions"] = positions  # not in state_dict
        if id(param) not in positions:
            raise ValueError(f"the parameter of shape {tuple(param.shape)} is not in this "
                             f"optimizer")
        return positions[id(param)]

    @torch.no_grad()
    def step_parameter(self, param: Tensor, grad: Tensor | None = None) -> None:
        """Update ``param`` alone from ``grad`` (default: its ``.grad``), exactly as
        :meth:`step` would.

        For updates inside the backward pass (:func:`snsm.step_in_backward`): the
        single-tensor path, eager even with ``compile=True``. A sparse, complex or
        non-finite gradient raises, and ``param`` is left unchanged.
        """
        grad = param.grad if grad is None else grad
        if grad is None:
            return
        group, index = self._position(param)
        if grad.is_sparse or grad.is_complex():
            raise RuntimeError(f"{type(self).__name__} does not support sparse or complex "
                               f"gradients (parameter {index}); it was not updated")
        if not all_finite([grad]):
            raise NonFiniteGradientError(f"non-finite gradient (inf or NaN) in parameter "
                                         f"{index}; it was not updated")
        hp = GroupHParams.from_group(group)
        local, grad, state, plan = self._prepare(param, grad, group, hp)
        snsm_update([local], [grad], [state], [plan], hp, [index], foreach=False)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimization step; ``closure`` re-evaluates the loss.

        While :func:`snsm.step_in_backward` is attached, the parameters were already updated
        inside the backward pass and this does nothing (after the closure, if any).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.__dict__.get("_in_backward"):
            return loss
        usable = self._gradients_are_usable()
        if usable is False:
            return loss
        finite = usable if isinstance(usable, Tensor) else None
        if finite is not None:
            self._count_skip_on_device(finite)
        first_index = 0
        for group in self.param_groups:
            hp = GroupHParams.from_group(group)
            params, grads, states, plans, indices = self._gather(group, hp, first_index)
            first_index += len(group["params"])
            if not params:
                continue
            compiled_graphs = None
            if group["compile"] and any(map(needs_collectives, plans)):
                warn_compile_is_eager()
            elif group["compile"]:  # graphs live with the optimizer, not in its state_dict
                graphs = self.__dict__.setdefault("_compiled_graphs", {})
                compiled_graphs = graphs.setdefault(id(group), {})
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.is_cuda for p in params)
            if finite is not None:
                gated_update(params, grads, states, plans, hp, indices, foreach, finite)
                continue
            snsm_update(params, grads, states, plans, hp, indices, foreach=foreach,
                        compiled_graphs=compiled_graphs)
        return loss

    def _count_skip_on_device(self, finite: Tensor) -> None:
        """skipped += not finite, on the device (no host sync; :attr:`skipped_steps` reads it)."""
        count = self.__dict__.get("_skipped_on_device")
        if count is None:
            count = torch.zeros((), dtype=torch.int64, device=finite.device)
        elif count.device != finite.device:
            count = count.to(finite.device)
        self._skipped_on_device = count.add_(finite.logical_not())


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


# What the registry and the harness read instead of probing signatures: the hyperparameters a
# class accepts (the named optimizers set their own) and its default lr.
SNSM.options = tuple(name for name in inspect.signature(SNSM).parameters if name != "params")
SNSM.default_lr = float(inspect.signature(SNSM).parameters["lr"].default)
