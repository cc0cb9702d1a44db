"""Optimizer step time against ``torch.optim.AdamW(foreach=True)``: a benchmark, not a test.

:func:`measure_speed` times ``optimizer.step()`` alone (no forward or backward
pass) on fixed random gradients. Optimizers with a Subspace-Momentum projector
are timed twice: a regular step (no projector refresh) and a refresh step
(an instance with ``update_gap=1``, so every step rebuilds the projector);
the amortized step time is

    (refresh + (update_gap - 1) * regular) / update_gap,

the mean step time over one projector period. Each round interleaves one
AdamW step and one regular step, so that the baseline sees the same machine
state (caches, thermal, other load) as the optimizer it is compared with; the
refresh steps are timed after the rounds, since their SVDs and large
temporaries slow the AdamW steps next to them. Reported times are medians.

On CUDA (``device="cuda"``) the skeleton and its gradients are drawn on the GPU (from a
generator there), each step is timed with CUDA events (:func:`snsm_workbench.measure.timing.event_ms`),
and a second baseline joins the rounds: ``torch.optim.AdamW(fused=True)`` (one kernel per
step; ``fused_adamw_ms``, ``ratio_vs_fused_adamw``). ``extra`` adds rows for other
optimizers (the peers' adapters of ``snsm bench``), timed like the rest. ``against`` adds
baselines to every round (a peer's adapter, e.g. ``torch.optim.Muon``'s, keyed ``peer_muon``:
``peer_muon_ms``, ``ratio_vs_peer_muon``), so a row and that peer are timed side by side,
interleaved, under the same load.
"""

from __future__ import annotations

import gc
import logging
import statistics
from typing import Callable

import torch
from torch import Tensor, nn

from snsm_workbench.measure.models import LLAMA_SHAPES, llama_skeleton
from snsm_workbench.measure.timing import event_ms, time_ms
from snsm.optim import SNSM
from snsm.optim.registry import create_optimizer, get_spec, list_optimizers
from snsm.projectors import PROJECTORS
from snsm.rules.momentum import is_refresh
from snsm import checks as check

logger = logging.getLogger(__name__)

__all__ = ["measure_speed", "merge_compiled", "speed_device"]

# Seed of the local generator that draws the skeleton's parameters and the gradients.
_SEED = 0
# Scale of the random parameters and gradients (values do not change the step's work).
_PARAM_STD = 0.02
_GRAD_STD = 1e-3
# Untimed baseline steps before the first round.
_BASELINE_WARM_UP = 3


def speed_device(device: str | torch.device) -> torch.device:
    """``"cpu"`` or ``"cuda"`` as a device; ValueError (one line) for another, or for CUDA
    where torch sees none."""
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        built = "this torch is built without CUDA" if torch.version.cuda is None \
            else "no GPU is visible"
        raise ValueError(f"--device cuda: CUDA is not available ({built}; torch "
                         f"{torch.__version__})")
    return device


def _check_arguments(model, optimizers, repeats, update_gap, compile, projectors) -> list[str]:
    if isinstance(model, str):
        if model not in LLAMA_SHAPES:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(LLAMA_SHAPES)} "
                             f"or pass an nn.Module")
    elif not isinstance(model, nn.Module):
        raise ValueError(f"model must be a name from snsm_workbench.measure.models.LLAMA_SHAPES or an nn.Module, "
                         f"got {type(model).__name__}")
    check.check_int("repeats", repeats, 1)
    check.check_int("update_gap", update_gap, 1)
    check.check_bool("compile", compile)
    if optimizers is None:
        names = list_optimizers()
    else:
        if isinstance(optimizers, str) or not optimizers:
            raise ValueError(f"optimizers must be a non-empty list of names (or None for all); "
                             f"got {optimizers!r}")
        names = list(optimizers)
        for name in names:
            get_spec(name)  # ValueError naming the registry's names
    if isinstance(projectors, str):
        raise ValueError(f"projectors must be a tuple of names, got the string {projectors!r}")
    projectors = tuple(projectors)
    if not projectors and any(get_spec(name).takes_projector for name in names):
        raise ValueError("projectors is empty but some optimizers need one; "
                         f"choose from {', '.join(PROJECTORS)}")
    for projector in projectors:
        if projector not in PROJECTORS:
            raise ValueError(f"unknown projector {projector!r}; choose one of "
                             f"{', '.join(PROJECTORS)}")
    return names


def _build_model(model: str | nn.Module, generator: torch.Generator) -> nn.Module:
    """The module to step: a LLaMA skeleton with random fp32 weights on the generator's
    device, or ``model`` as is.

    The skeleton is built on ``meta`` and materialized with ``to_empty``, so that
    torch's default initializers (which draw from the global RNG) never run.
    """
    if isinstance(model, nn.Module):
        if any(p.is_meta for p in model.parameters()):
            raise ValueError("model has parameters on the meta device; materialize it first")
        return model
    device = generator.device
    module = llama_skeleton(model, device="meta", dtype=torch.float32).to_empty(device=device)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype,
                                    device=device).mul_(_PARAM_STD))
    return module


def _assign_gradients(params: list[Tensor], generator: torch.Generator) -> None:
    """Fixed random gradients (drawn on the generator's device) on every parameter."""
    for param in params:
        grad = torch.randn(param.shape, generator=generator, dtype=param.dtype,
                           device=generator.device).mul_(_GRAD_STD)
        param.grad = grad.to(param.device)


def _stepper(optimizer: torch.optim.Optimizer, compile: bool) -> Callable[[], object]:
    """The step to time: an SNSM built with ``compile=True`` compiles its own update;
    a torch optimizer is compiled the way torch documents, ``torch.compile(opt.step)``."""
    if not compile or isinstance(optimizer, SNSM):
        return optimizer.step
    return torch.compile(optimizer.step, fullgraph=False)


def _warm_up(step: Callable[[], object], label: str, compile: bool) -> None:
    """The first step: allocates the state, first projector refresh, compilation if asked."""
    if not compile:
        step()
        return
    try:
        step()
    except Exception as exc:  # compilation errors come in many types
        raise RuntimeError(f"torch.compile of {label}'s step failed: "
                           f"{type(exc).__name__}: {exc}") from exc


def _measure_row(model: nn.Module, name: str, projector: str | None, repeats: int,
                 update_gap: int, compile: bool, baselines: dict[str, Callable[[], object]],
                 timer: Callable[[Callable[[], object]], float],
                 build: Callable[[nn.Module], torch.optim.Optimizer] | None = None) -> dict:
    """One row: ``name`` from the registry (or from ``build``, an optimizer without
    projector) against each baseline step (``"adamw"`` first), rounds timed by ``timer``."""
    label = name if projector is None else f"{name} ({projector})"
    hparams = {} if projector is None else {"projector": projector, "update_gap": update_gap}
    if compile:
        hparams["compile"] = True
    regular = create_optimizer(model, name, **hparams) if build is None else build(model)
    regular_step = _stepper(regular, compile)
    # With update_gap == 1 every step is a refresh: the regular instance is the refresh one.
    refresh = None
    refresh_step = None
    if projector is not None and update_gap > 1:
        refresh = create_optimizer(model, name, **{**hparams, "update_gap": 1})
        refresh_step = _stepper(refresh, compile)

    _warm_up(regular_step, label, compile)  # step 1: a refresh
    if refresh_step is not None:
        _warm_up(refresh_step, f"{label} (update_gap=1)", compile)
    regular_steps_taken = 1
    if not is_refresh(2, update_gap):
        regular_step()  # a first regular step allocates what refreshes do not
        regular_steps_taken = 2

    baseline_times = {key: [] for key in baselines}
    regular_times, refresh_times = [], []
    for _ in range(repeats):
        for key, baseline_step in baselines.items():
            baseline_times[key].append(timer(baseline_step))
        if projector is not None and update_gap > 1 \
                and is_refresh(regular_steps_taken + 1, update_gap):
            # The next regular step would refresh the projector: take it untimed.
            regular_step()
            regular_steps_taken += 1
        regular_times.append(timer(regular_step))
        regular_steps_taken += 1
    # Refreshes (seconds of SVD/QR and large temporaries) are timed after the rounds,
    # so that they do not disturb the AdamW steps the regular steps are compared with.
    if refresh_step is not None:
        refresh_times = [timer(refresh_step) for _ in range(repeats)]

    baseline_ms = {key: statistics.median(times) for key, times in baseline_times.items()}
    adamw_ms = baseline_ms["adamw"]
    step_ms = statistics.median(regular_times)
    if projector is None or update_gap == 1:
        refresh_ms = amortized_ms = step_ms
    else:
        refresh_ms = statistics.median(refresh_times)
        amortized_ms = (refresh_ms + (update_gap - 1) * step_ms) / update_gap

    del regular_step, refresh_step, regular, refresh
    gc.collect()
    row = {"optimizer": name, "projector": projector or "-", "step_ms": round(step_ms, 2),
           "refresh_ms": round(refresh_ms, 2), "amortized_ms": round(amortized_ms, 2),
           "adamw_ms": round(adamw_ms, 2), "ratio_vs_adamw": round(amortized_ms / adamw_ms, 3),
           "repeats": repeats, "update_gap": update_gap, "compile": compile}
    for key, ms in baseline_ms.items():
        if key != "adamw":
            row[f"{key}_ms"] = round(ms, 2)
            row[f"ratio_vs_{key}"] = round(amortized_ms / ms, 3)
    logger.info("%-13s %-8s step %9.2f ms  refresh %9.2f ms  amortized %9.2f ms  "
                "AdamW %9.2f ms  ratio %.3f", name, row["projector"], step_ms, refresh_ms,
                amortized_ms, adamw_ms, amortized_ms / adamw_ms)
    return row


def measure_speed(model: str | nn.Module, optimizers: list[str] | None = None, repeats: int = 5,
                  update_gap: int = 200, compile: bool = False,
                  projectors: tuple[str, ...] = ("svd", "rsvd", "uniform"),
                  device: str | torch.device = "cpu",
                  extra: dict[str, Callable[[nn.Module], torch.optim.Optimizer]] | None = None,
                  against: dict[str, Callable[[nn.Module], torch.optim.Optimizer]] | None = None
                  ) -> list[dict]:
    """Time each optimizer's step against ``torch.optim.AdamW(foreach=True)`` (and, on CUDA,
    ``AdamW(fused=True)``).

    Args:
        model: a name from :data:`snsm_workbench.measure.models.LLAMA_SHAPES` (its skeleton, materialized
            on the CPU in fp32 with random weights) or an ``nn.Module``, used as is:
            its trainable parameters get fixed random ``.grad`` tensors and are
            modified by the steps (their previous ``.grad`` is put back at the end).
        optimizers: registry names (default: all of :func:`snsm.list_optimizers`).
        repeats: timed rounds of one AdamW and one regular step, then as many refresh
            steps for optimizers with a projector. Medians are reported.
        update_gap: the projector period, for the regular instance and the amortization.
        compile: build every optimizer with ``compile=True`` (its update math compiled
            once, refreshes eager; :mod:`snsm.optim.compiled`) and compile the AdamW
            baseline with ``torch.compile(adamw.step)``, so that the ratio compares
            compiled with compiled; RuntimeError if compilation fails. Compilation
            happens in the untimed warm-up steps.
        projectors: one row per projector for the optimizers that take one.
        device: where a named skeleton lives, ``"cpu"`` or ``"cuda"`` (ValueError without
            CUDA); a module is stepped where its parameters are. On CUDA: CUDA events, and
            the fused AdamW baseline in every round.
        extra: more rows, ``name -> build(module) -> optimizer`` (no projector; a peer's
            adapter, say); one that fails to build or step is left out with a warning.
        against: more baselines, ``name -> build(module) -> optimizer``, each stepped in
            every round beside AdamW (``peer_<name>_ms``, ``ratio_vs_peer_<name>``: the row's
            amortized time over the peer's median); one that fails to build raises.

    Returns:
        One dict per (optimizer, projector) with ``optimizer``, ``projector`` (``"-"``
        for none), ``step_ms`` (regular step), ``refresh_ms``, ``amortized_ms``,
        ``adamw_ms`` (AdamW median over the same rounds), ``ratio_vs_adamw``
        (amortized / AdamW), ``repeats``, ``update_gap`` and ``compile``; on CUDA also
        ``fused_adamw_ms`` and ``ratio_vs_fused_adamw`` (the fused baseline stays eager
        under ``compile``: it is one kernel already).

    Parameters and gradients come from a local ``torch.Generator``; the global RNG
    is never drawn from. A warm-up step per optimizer (state allocation, first
    refresh, compilation) is not timed, and neither is a regular instance's step
    that would refresh its projector (it is taken between rounds).
    """
    names = _check_arguments(model, optimizers, repeats, update_gap, compile, projectors)
    device = speed_device(device)
    if isinstance(model, nn.Module):
        device = next((p.device for p in model.parameters() if not p.is_meta), device)
    generator = torch.Generator(device=device).manual_seed(_SEED)
    module = _build_model(model, generator)
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    saved_grads = [p.grad for p in params]
    devices = {p.device for p in params}
    cuda = device.type == "cuda"
    timer = (lambda call: event_ms(call, device)) if cuda else (lambda call: time_ms(call, devices))
    numel = sum(p.numel() for p in params)
    logger.info("speed: %s, %.1fM trainable parameters, %d threads, repeats=%d, update_gap=%d%s",
                model if isinstance(model, str) else type(model).__name__, numel / 1e6,
                torch.get_num_threads(), repeats, update_gap, ", compiled" if compile else "")
    try:
        _assign_gradients(params, generator)
        baselines = _baselines(params, compile, cuda)
        baselines.update(_peer_baselines(module, against or {}, compile))
        rows = []
        for name in names:
            for projector in (projectors if get_spec(name).takes_projector else (None,)):
                rows.append(_measure_row(module, name, projector, repeats, update_gap, compile,
                                         baselines, timer))
                _release(cuda)
        for name, build in (extra or {}).items():
            try:
                rows.append(_measure_row(module, name, None, repeats, update_gap, compile,
                                         baselines, timer, build))
            except Exception as exc:  # an optional adapter: missing package, no CUDA kernel
                logger.warning("speed: %s left out: %s: %s", name, type(exc).__name__, exc)
            _release(cuda)
        del baselines
        _release(cuda)
        return rows
    finally:
        for param, grad in zip(params, saved_grads):
            param.grad = grad


def _baselines(params: list[Tensor], compile: bool, cuda: bool) -> dict[str, Callable]:
    """The warmed-up baseline steps: ``"adamw"`` (foreach; compiled with ``compile``) and,
    on CUDA, ``"fused_adamw"`` (eager)."""
    adamw_step = _stepper(torch.optim.AdamW(params, foreach=True), compile)
    _warm_up(adamw_step, "torch.optim.AdamW", compile)
    baselines = {"adamw": adamw_step}
    if cuda:
        baselines["fused_adamw"] = torch.optim.AdamW(params, fused=True).step
    for step in baselines.values():
        for _ in range(_BASELINE_WARM_UP - 1):
            step()  # the first steps of a fresh process are slow (allocator, caches)
    return baselines


def _peer_baselines(module: nn.Module, against: dict[str, Callable], compile: bool
                    ) -> dict[str, Callable]:
    """``{"peer_<name>": step}``, each built on ``module`` and warmed up like AdamW."""
    steps = {}
    for name, build in against.items():
        step = _stepper(build(module), compile)
        _warm_up(step, f"peer {name}", compile)
        for _ in range(_BASELINE_WARM_UP - 1):
            step()
        steps[f"peer_{name}"] = step
    return steps


def _release(cuda: bool) -> None:
    """Free what the last row left (its optimizers' state) before the next one."""
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def merge_compiled(row: dict, compiled: dict) -> dict:
    """An eager row of ``measure_speed`` with the compiled run's amortized time and ratio."""
    if (row["optimizer"], row["projector"]) != (compiled["optimizer"], compiled["projector"]):
        raise RuntimeError(f"eager and compiled rows differ: {row} against {compiled}")
    return {**row, "compiled_ms": compiled["amortized_ms"],
            "compiled_adamw_ms": compiled["adamw_ms"],
            "compiled_ratio_vs_adamw": compiled["ratio_vs_adamw"],
            "compile_speedup": round(row["amortized_ms"] / compiled["amortized_ms"], 3)}
