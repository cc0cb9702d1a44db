"""examples/accelerate_ddp.py under ``accelerate launch``: 2 CPU processes, DDP over gloo.

Slow but run by default (about 25 s on a loaded 2-core machine: two processes import torch and
accelerate)."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

pytest.importorskip("accelerate")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

EXAMPLE = Path(__file__).parents[3] / "examples" / "accelerate_ddp.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_launch(out: Path, steps: int) -> subprocess.CompletedProcess:
    """The example's documented CPU command, with the defaults the launcher would warn about."""
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    command = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               str(EXAMPLE), "--cpu", "--steps", str(steps), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "HF_HOME": str(out / "hf-home")}  # no user accelerate config
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow
def test_accelerate_example_trains_two_ranks_to_identical_parameters(tmp_path):
    steps = 12
    result = accelerate_launch(tmp_path, steps)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for report in reports:
        assert report["world_size"] == 2 and report["backend"] == "gloo"
        assert len(report["losses"]) == steps
    assert reports[0]["losses"] == reports[1]["losses"]  # gathered over the ranks
    losses = reports[0]["losses"]
    assert losses[-1] < 0.75 * losses[0], losses
    params = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert params[0].keys() == params[1].keys() and "head.weight" in params[0]
    for name in params[0]:
        assert torch.equal(params[0][name], params[1][name]), name
