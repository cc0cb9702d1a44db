"""Running out of memory as one line: :class:`~snsm_workbench.util.errors.OutOfMemory` naming
what ran out and what to lower, instead of the allocator's traceback.

Only the exception is caught (``torch.OutOfMemoryError``: CUDA or the CPU allocator;
``MemoryError``: numpy or Python), so the guarded code runs exactly as fast as before.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from snsm_workbench.util.errors import OutOfMemory

# what to lower in ``snsm train`` when a step does not fit
TRAIN_ADVICE = ("lower --batch-size (raise --grad-accum to keep the batch), --seq-len or the "
                "--preset, or use --pure-bf16 / --state-precision 8bit")


@contextlib.contextmanager
def out_of_memory(where: str | Callable[[], str], advice: str):
    """Turn running out of memory inside the block into :class:`OutOfMemory`, one line:
    ``out of memory {where}: {advice}`` (``where`` may be a callable, read on failure)."""
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError) as exc:
        place = where() if callable(where) else where
        reason = " ".join(str(exc).split())[:160]
        raise OutOfMemory(f"out of memory {place} ({type(exc).__name__}: {reason}); "
                          f"{advice}") from None
