"""Peak memory of real work: CUDA's allocator counters, or live tensor bytes on the CPU.

On CUDA, :class:`PeakMemory` reads ``torch.cuda.max_memory_allocated`` (reset on
entry). On the CPU there is no allocator counter (RSS counts the allocator's
caches and the interpreter), so a dispatch mode watches every tensor an op creates:
each new storage adds its bytes while it is alive (a finalizer subtracts them when
it is freed), and the peak of that sum is the peak of live tensor bytes. Tensors
that exist before entry (weights, gradients, optimizer state) are counted when
passed to ``PeakMemory(existing=...)``. Every op pays a Python call: meter one
step, not a run.
"""

from __future__ import annotations

import weakref
from typing import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _LiveTensorBytes(TorchDispatchMode):
    """Sums the bytes of live storages created under the mode (and of those added)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def add(self, tensor: torch.Tensor) -> None:
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.is_sparse:
            return  # wrapper subclasses (DTensor, ...) have no storage of their own
        storage = tensor.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or key in self.live or tensor.device.type != "cpu":
            return
        self.live[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self.add(item)
        return out


class PeakMemory:
    """``with PeakMemory(device, existing) as meter: ...``; then ``meter.peak_bytes``."""

    def __init__(self, device: torch.device | str = "cpu",
                 existing: Iterable[torch.Tensor] = ()):
        self.device = torch.device(device)
        self.existing = list(existing)
        self.peak_bytes = 0
        self._mode: _LiveTensorBytes | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._mode = _LiveTensorBytes()
        for tensor in self.existing:
            self._mode.add(tensor)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
            return
        self._mode.__exit__(*exc)
        self.peak_bytes = self._mode.peak
