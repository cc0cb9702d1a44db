"""Launch ``dist_worker.py`` (or ``snsm train``) on 2 CPU processes with torchrun and gloo."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("dist_worker.py")


def torchrun(*args, nproc: int = 2, timeout: int = 240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=nproc ARGS`` (it picks a free port); fails
    the test with the output's tail when a rank fails."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode:
        pytest.fail(f"torchrun {' '.join(map(str, args))} failed ({result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-8000:]}")
    return result


def write_corpus(path: Path) -> Path:
    """The small text corpus of the harness tests (``tests/train/conftest.py``)."""
    spec = importlib.util.spec_from_file_location(
        "train_conftest", Path(__file__).parents[1] / "snsm_workbench" / "train" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_corpus(path)
