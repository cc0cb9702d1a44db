"""Timing a step: CUDA synchronized around ``time.perf_counter``, or through step hooks."""

from __future__ import annotations

import time
from typing import Callable, Iterable

import torch


def synchronize(devices: Iterable[torch.device]) -> None:
    """Wait for the queued work of every CUDA device of ``devices`` (no-op on the CPU)."""
    for device in devices:
        if device.type == "cuda":
            torch.cuda.synchronize(device)


def time_ms(call: Callable[[], object], devices: Iterable[torch.device] = ()) -> float:
    """Milliseconds of ``call()``, its CUDA work included."""
    devices = tuple(devices)
    synchronize(devices)
    start = time.perf_counter()
    call()
    synchronize(devices)
    return (time.perf_counter() - start) * 1e3


def _devices(optimizer: torch.optim.Optimizer) -> set[torch.device]:
    return {p.device for group in optimizer.param_groups for p in group["params"]}


class StepTimer:
    """Times every ``optimizer.step()`` through the optimizer's step hooks (seconds)."""

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        devices = _devices(optimizer)

        def before(opt, args, kwargs):
            synchronize(devices)
            self._start = time.perf_counter()

        def after(opt, args, kwargs):
            synchronize(devices)
            self.times.append(time.perf_counter() - self._start)

        optimizer.register_step_pre_hook(before)
        optimizer.register_step_post_hook(after)
