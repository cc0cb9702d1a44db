"""The registry of lab experiments and ``run(name, quick, out)``."""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from pathlib import Path

import torch

from snsm_workbench.lab.report import Result

logger = logging.getLogger(__name__)

# experiment name -> module of snsm_workbench.lab exposing ``run(quick, out) -> Result``
EXPERIMENTS: dict[str, str] = {
    "subset-norm": "subset_norm",
    "adagrad-variants": "adagrad_variants",
    "adagrad-vs-sgd": "adagrad_vs_sgd",
    "high-probability": "high_probability",
    "heavy-tails": "heavy_tails",
    "memory-sample": "memory_sample",
    "subspace-momentum": "subspace_momentum",
}


@contextlib.contextmanager
def intra_op_threads(count: int):
    """Run with ``count`` intra-op threads, then restore the previous setting.

    The lab's tensors are tiny (thousands of elements): a thread pool only adds
    wake-up latency (torch.sin on 10^4 floats took milliseconds with 2 busy threads).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run(name: str, quick: bool = False, out: str | Path = "runs/lab") -> Result:
    """Run one experiment; its CSV and PNG go to ``out``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    module = importlib.import_module(f"snsm_workbench.lab.{EXPERIMENTS[name]}")
    start = time.perf_counter()
    with intra_op_threads(1):
        result = module.run(quick, Path(out))
    result.seconds = time.perf_counter() - start
    logger.info("lab %s: %s in %.1f s", name, result.verdict, result.seconds)
    return result


def run_all(quick: bool = False, out: str | Path = "runs/lab") -> list[Result]:
    return [run(name, quick, out) for name in EXPERIMENTS]
