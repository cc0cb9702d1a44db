"""``SNSM``: the generic optimizer every named optimizer here is built on."""

from __future__ import annotations

import inspect
from typing import Callable, Iterable

import torch
from torch import Tensor

from snsm.optim.functional import snsm_update
from snsm.optim.hyperparameters import (check_hyperparameters, check_orthogonal_group,
                                        check_same_step_setting, check_unknown_keys)
from snsm.optim.loading import check_same_structure, check_state_shapes
from snsm.optim.nonfinite import (NonFiniteGradientError, SkipCount, all_finite,
                                  check_gradients, gated_update)
from snsm.optim.plan import GroupHParams, state_layout
from snsm.optim.sharded_state import unwrap_state_dict, wrap_state_dict
from snsm.optim.sharding import ShardSpec, needs_collectives, warn_compile_is_eager
from snsm.rules.orthogonalize import DEFAULT_COEFFICIENTS

__all__ = ["SNSM", "NonFiniteGradientError"]


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
            ``seed``, the parameter's index and the step, never the global RNG; an FSDP2
            shard takes its rows' bits of the whole, so ranks round as one process), ``"kahan"`` (a bf16 compensation per parameter in the
            state, 2 bytes per element, keeps the low bits: deterministic) or ``"nearest"``
            (rounded to nearest, as plain PyTorch: updates below half a bf16 spacing are
            lost and training stalls).
        skip_nonfinite: every step first checks that all gradients are finite (one read of
            the gradients). With a non-finite one, nothing is changed and the step raises
            :class:`NonFiniteGradientError` (a verdict the host must read before the first
            write: one host sync on CUDA), or with ``skip_nonfinite=True`` is skipped and
            counted in ``skipped_steps``: on the CPU with a warning; on CUDA on the device,
            without a host sync and without a warning (:func:`snsm.optim.nonfinite.gated_update`:
            the step count advances there, and the gated step costs a copy of each tensor).
            A group key like the others (so ``deepcopy``, pickle and ``state_dict`` carry it),
            with one value for every group, since it applies to whole steps.
        nesterov: Nesterov momentum, N = g.lerp(m, b1) (:mod:`snsm.rules.momentum`).
        complement: what Subspace-Momentum gives the complement of its subspace:
            ``"gradient"`` (plain g), ``"none"`` or ``"buffer"`` (an 8-bit EMA of it).
        orthogonalize: Muon's rule (:mod:`snsm.rules.orthogonalize`): the update is
            NS(N), the Newton-Schulz orthogonalization of N, times the shape scale, with
            D = 1 (needs ``accumulator="none"`` and matrices: a 1-D or empty tensor raises).
            ``ns_steps``, ``ns_coefficients`` (a, b, c) and ``ns_dtype`` (``"bfloat16"``, as
            torch.optim.Muon on every device, ``"float32"`` or ``"float64"``) set the iteration,
            whose normalization uses ``eps``; ``shape_scale`` (``"original"``: sqrt(max(1,
            m/n)), ``"match_rms_adamw"``: 0.2 sqrt(max(m, n)), ``"none"``) multiplies the lr;
            ``normalize`` (``"none"``, ``"row"``, ``"column"``, ``"heuristic"``) adds the
            Subset-Norm second moment after it (NorMuon-like, beta ``betas[1]``, O(m) or O(n)).

    Everything that controls a step lives in ``defaults`` and the param groups. The instance
    also holds caches (parameter positions, compiled graphs: rebuilt on demand, never
    copied), the hooks of :func:`snsm.step_in_backward` (an attachment to a live model: a
    copy steps normally) and the informational ``skipped_steps`` count (carried by
    ``deepcopy`` and pickle, not by ``state_dict``).
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
                 skip_nonfinite: bool = False, nesterov: bool = False,
                 complement: str = "gradient", orthogonalize: bool = False, ns_steps: int = 5,
                 ns_coefficients: tuple[float, float, float] = DEFAULT_COEFFICIENTS,
                 ns_dtype: str = "bfloat16", shape_scale: str = "original",
                 normalize: str = "none"):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        eps=eps, weight_decay=weight_decay, momentum=momentum,
                        accumulator=accumulator, bias_correction=bias_correction,
                        subset_size=subset_size, rank=rank, projector=projector,
                        update_gap=update_gap, on_refresh=on_refresh, seed=seed,
                        use_snsm=use_snsm, state_precision=state_precision, foreach=foreach,
                        maximize=maximize, compile=compile, bf16_update=bf16_update,
                        skip_nonfinite=skip_nonfinite, nesterov=nesterov, complement=complement,
                        orthogonalize=orthogonalize, ns_steps=ns_steps,
                        ns_coefficients=tuple(ns_coefficients), ns_dtype=ns_dtype,
                        shape_scale=shape_scale, normalize=normalize)
        check_hyperparameters(defaults)
        self._skip_count = SkipCount()
        super().__init__(params, defaults)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _declare_options(cls)

    def add_param_group(self, param_group: dict) -> None:
        check_unknown_keys(param_group, self.defaults)
        check_hyperparameters(param_group)
        check_same_step_setting("skip_nonfinite", param_group, self.param_groups, self.defaults)
        check_orthogonal_group({**self.defaults, **param_group})
        params = param_group["params"]
        if not isinstance(params, set):  # torch refuses sets (unordered) with its own error
            params = [params] if isinstance(params, Tensor) else list(params)
            param_group = {**param_group, "params": params}
            for param in params:
                if isinstance(param, Tensor) and param.is_complex():
                    raise ValueError(f"{type(self).__name__} does not support complex "
                                     f"parameters (got one of dtype {param.dtype})")
        super().add_param_group(param_group)

    def __getstate__(self) -> dict:
        """torch's (defaults, state, param groups) and the informational skip count."""
        return {**super().__getstate__(), "_skip_count": SkipCount(self.skipped_steps)}

    def __setstate__(self, state: dict) -> None:
        """Fill the group keys a state dict saved before they existed (``compile``,
        ``skip_nonfinite``, ...) with this optimizer's defaults, once at load time rather
        than in every step; drop the parameter positions cached for the old groups."""
        super().__setstate__(state)
        self.__dict__.pop("_positions", None)  # caches of the old groups
        self.__dict__.pop("_compiled_graphs", None)
        self.__dict__.setdefault("_skip_count", SkipCount())
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def state_dict(self) -> dict:
        """As ``torch.optim.Optimizer.state_dict``; the state of a parameter sharded on dim 0
        (FSDP2) holds DTensors for its keys sharded like it (:mod:`snsm.optim.sharded_state`)."""
        return wrap_state_dict(self, super().state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        """As ``torch.optim.Optimizer.load_state_dict``, with three differences.

        * It refuses (ValueError naming the group, the key and both values) a state
          whose structural settings differ from this optimizer's (:data:`snsm.optim.loading.STRUCTURAL_KEYS`:
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
        """Steps skipped for non-finite gradients (:class:`snsm.optim.nonfinite.SkipCount`);
        reading the count of a device-side skip (``skip_nonfinite`` on CUDA) waits for the
        device."""
        return self._skip_count.total

    def _gradients_are_usable(self) -> bool | Tensor:
        """:func:`snsm.optim.nonfinite.check_gradients` of every gradient, in order."""
        params = [p for group in self.param_groups for p in group["params"]]
        named = [(i, p.grad) for i, p in enumerate(params) if p.grad is not None]
        return check_gradients(named, self.param_groups[0]["skip_nonfinite"],
                               self._skip_count, type(self).__name__)

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
            self._skip_count.add_on_device(finite)
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


def _declare_options(cls: type) -> None:
    """Set ``cls.options`` (the hyperparameters its constructor accepts beside ``params``, in
    order) and ``cls.constructor_lr`` (its constructor's default lr; None for a subclass
    without one), read once here from the signature so that the registry and the harness
    read attributes instead."""
    parameters = inspect.signature(cls).parameters
    cls.options = tuple(name for name in parameters if name != "params")
    lr = parameters.get("lr")
    has_default = lr is not None and isinstance(lr.default, (int, float))
    cls.constructor_lr = float(lr.default) if has_default else None


_declare_options(SNSM)
