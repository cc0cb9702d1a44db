"""Helpers of the tests that drive real ``snsm train`` processes."""

from __future__ import annotations

import json
import time


def wait_for_step(run_dir, step: int, process, timeout: float = 180) -> None:
    """Wait until ``run_dir/metrics.jsonl`` records ``step`` while ``process`` still runs."""
    deadline = time.monotonic() + timeout  # a guard against a hang, not a measurement
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if metrics.exists():
            steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines()
                     if line.endswith("}")]
            if steps and max(steps) >= step:
                return
        time.sleep(0.02)
    raise TimeoutError(f"step {step} not reached")
