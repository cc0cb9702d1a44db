"""A run killed with SIGKILL mid-run and resumed ends exactly as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import torch

from processes import wait_for_step
from snsm_workbench.train import checkpoint as ckpt

DETERMINISTIC = ("step", "tokens", "loss", "lr", "grad_norm", "val_loss")


def _command(corpus_dir, cache, out, *extra):
    return [sys.executable, "-m", "snsm_workbench", "train", "--preset", "tiny", "--optimizer",
            "adamw_snsm", "--opt", "rank=8", "--opt", "update_gap=7", "--data", str(corpus_dir),
            "--vocab-size", "300", "--seq-len", "32", "--batch-size", "4", "--steps", "30",
            "--eval-every", "10", "--save-every", "5", "--cache-dir", str(cache), "--out",
            str(out), "--quiet", *extra]


def _deterministic(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in DETERMINISTIC if k in r} for r in records]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, corpus_dir):
    cache = tmp_path / "cache"
    reference = tmp_path / "reference"
    subprocess.run(_command(corpus_dir, cache, reference), check=True, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(corpus_dir, cache, killed), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_step(killed, 17, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert ckpt.load_checkpoint(killed)["step"] < 30
    subprocess.run([sys.executable, "-m", "snsm_workbench", "train", "--resume", str(killed), "--quiet"],
                   check=True, capture_output=True)

    want, got = ckpt.load_checkpoint(reference), ckpt.load_checkpoint(killed)
    assert got["step"] == want["step"] == 30
    for key, tensor in want["model"].items():
        assert torch.equal(got["model"][key], tensor), key
    assert _deterministic(killed) == _deterministic(reference)
