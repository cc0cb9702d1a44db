"""Timing a step: CUDA synchronized around ``time.perf_counter``, CUDA events, or through
step hooks."""

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


def event_ms(call: Callable[[], object], device: torch.device) -> float:
    """Milliseconds of ``call()`` on CUDA ``device`` between two CUDA events on its current
    stream: the device's time from the first queued kernel to the last, idle gaps waiting
    for the host's launches included (what a launch-bound step costs)."""
    torch.cuda.synchronize(device)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    stream = torch.cuda.current_stream(device)
    start.record(stream)
    call()
    end.record(stream)
    end.synchronize()
    return start.elapsed_time(end)


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
