"""Memory metering of the training steps: the fields of a step's record that measure memory.

* ``state_bytes``: the optimizer's state (:func:`snsm.state_bytes`);
* ``peak_rss_mb``: the process's peak resident set so far;
* ``peak_memory_mb``: on CUDA the allocator's peak (it runs all along); on the CPU the peak of
  live tensor bytes during the first step of the process only (:class:`PeakMemory` slows
  every op), and never under torchrun or ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import logging
import resource

import torch

import snsm
from snsm_workbench.measure.peak import PeakMemory

logger = logging.getLogger(__name__)


class StepMeter:
    """Meters the steps of one run on ``device`` (``distributed``: under torchrun)."""

    def __init__(self, device: torch.device, distributed: bool):
        self.device = device
        self.distributed = distributed
        self.metered = False  # whether a CPU step has been metered

    def peak(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        """A context around one step: a :class:`PeakMemory` for the first CPU step, else
        nothing."""
        if self.metered or self.device.type != "cpu" or self.distributed \
                or any(group.get("compile") for group in optimizer.param_groups):
            return contextlib.nullcontext()
        self.metered = True
        state = [v for s in optimizer.state.values() for v in s.values()
                 if isinstance(v, torch.Tensor)]
        return PeakMemory("cpu", existing=[*model.parameters(), *state])

    def record(self, optimizer: torch.optim.Optimizer, meter, step: int) -> dict:
        """The memory fields of step ``step``'s record; ``meter`` is what :meth:`peak` gave."""
        fields = {"state_bytes": snsm.state_bytes(optimizer),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if self.device.type == "cuda":
            fields["peak_memory_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif isinstance(meter, PeakMemory):
            logger.info("peak memory of step %d: %.1f MiB of live tensors", step,
                        meter.peak_bytes / 2**20)
            fields["peak_memory_mb"] = meter.peak_bytes / 2**20
        return fields
