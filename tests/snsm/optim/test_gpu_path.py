"""The GPU path's CPU-side parts: snsm speed --device, snsm train --device, the device check."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from devices import needs_cuda
from snsm_workbench.cli import main
from snsm_workbench.measure.speed import measure_speed, speed_device
from snsm_workbench.train import parallel
from snsm_workbench.train.config import config_from_dict

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 8))


# ----------------------------------------------------------------------------- snsm speed


@no_cuda
def test_speed_device_cuda_without_cuda_is_one_line(capsys):
    assert main(["speed", "--device", "cuda", "--optimizers", "adamw"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CUDA is not available" in err
    with pytest.raises(ValueError, match="CUDA is not available"):
        speed_device("cuda")


def test_speed_extra_rows_and_failing_ones_left_out(caplog):
    def broken(model):
        raise RuntimeError("no kernel")

    extra = {"sgd": lambda m: torch.optim.SGD(m.parameters(), lr=0.1), "broken": broken}
    with caplog.at_level(logging.WARNING, logger="snsm_workbench.measure.speed"):
        rows = measure_speed(_tiny(), ["adamw_sn"], repeats=1, update_gap=3, extra=extra)
    assert [row["optimizer"] for row in rows] == ["adamw_sn", "sgd"]
    assert "broken left out" in caplog.text
    assert "fused_adamw_ms" not in rows[0]  # the fused baseline joins on CUDA only


@needs_cuda
def test_speed_on_cuda_has_the_fused_baseline():
    rows = measure_speed(_tiny().cuda(), ["adamw_sn", "adamw_snsm"], repeats=2, update_gap=3,
                         projectors=("uniform",))
    for row in rows:
        assert row["fused_adamw_ms"] > 0 and row["ratio_vs_fused_adamw"] > 0


@needs_cuda
def test_event_ms_times_queued_work():
    from snsm_workbench.measure.timing import event_ms

    x = torch.randn(2048, 2048, device="cuda")
    assert event_ms(lambda: x @ x, x.device) > 0


# ----------------------------------------------------------------------------- snsm train


def test_train_device_is_validated_and_resolved():
    assert config_from_dict({}).device == "auto"
    assert config_from_dict({"device": "cpu"}).device == "cpu"
    with pytest.raises(ValueError, match="device"):
        config_from_dict({"device": "gpu"})
    assert parallel.use_cuda("auto") == torch.cuda.is_available()
    assert parallel.use_cuda("cpu") is False
    assert parallel.start("none", "cpu").device == torch.device("cpu")


@no_cuda
def test_train_device_cuda_without_cuda_is_one_line(capsys, tmp_path):
    assert main(["train", "--device", "cuda", "--steps", "1", "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CUDA is not available" in err
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- make gpu-check


def test_make_gpu_check_runs_the_script():
    makefile = (ROOT / "Makefile").read_text()
    assert "gpu-check:" in makefile and "scripts/gpu_check.py" in makefile


def test_gpu_check_help_and_dry_run(capsys):
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "--dry-run" in done.stdout
    assert _gpu_check().main(["--dry-run"]) == 0
    plan = capsys.readouterr().out
    for part in ("tests", "speed-llama-60m", "speed-llama-350m", "speed-llama-1b",
                 "speed-llama-60m-compiled", "train-adamw ", "train-adamw_snsm",
                 "tests-compiled", "bench-gpu"):
        assert part in plan
    assert "--device cuda" in plan and "--bf16" in plan and "-k 'cuda and" in plan


def test_gpu_check_parts_fit_in_eight_minutes(tmp_path):
    """Every part at its time limit: no part starts after the budget, so all of it ends
    within 8 minutes."""
    module = _gpu_check()
    elapsed = 0
    for part in module.parts(tmp_path):
        if elapsed <= module.BUDGET_S:
            elapsed += part["limit"]
    assert elapsed <= 480
    assert module.BUDGET_S + max(p["limit"] for p in module.parts(tmp_path)[1:]) <= 480


def test_gpu_check_commands_parse(tmp_path):
    """Every snsm command of the check parses here (argparse exits 2 on a bad flag)."""
    from snsm_workbench.cli import build_parser

    for part in _gpu_check().parts(tmp_path):
        if part["argv"][0] == "snsm":
            build_parser().parse_args(part["argv"][1:])


@no_cuda
def test_gpu_check_fails_clearly_without_cuda(tmp_path, capsys):
    assert _gpu_check().main(["--out", str(tmp_path / "record")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "record").exists()
