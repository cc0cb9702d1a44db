"""Runs of the bench: one contender at one lr and seed, on the training harness.

Every run of a suite uses the same model preset, batch size, schedule and token
data; seed ``s`` fixes both the initial weights and the batch order, so all
contenders see identical data in the same order. A finished run leaves
``bench.json`` (optimizer-state bytes, optimizer-step times) beside the
harness's ``metrics.jsonl`` and is reused by a later bench on the same folder;
an unfinished one is started over. Checkpoints are deleted after each run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from snsm_workbench.bench.contenders import Contender, ContenderFactory
from snsm_workbench.measure.memory import reachable_state_bytes
from snsm_workbench.train.checkpoint import CHECKPOINT_NAME
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import TrainingError, train
from snsm_workbench.train.metrics import METRICS_NAME, read_records
from snsm_workbench.train.tokens import TokenData

logger = logging.getLogger(__name__)

BENCH_NAME = "bench.json"


@dataclass
class RunResult:
    """One finished run: its metric records, state bytes and optimizer-step times (s)."""

    label: str
    lr: float
    seed: int
    records: list[dict]
    state_bytes: int
    opt_step_times: list[float]
    failed: str | None = None

    @property
    def final_val_loss(self) -> float:
        evals = [r["val_loss"] for r in self.records if "val_loss" in r]
        if self.failed or not evals or not math.isfinite(evals[-1]):
            return math.inf
        return evals[-1]


def run_config(base: TrainConfig, contender: Contender, lr: float, plain_lr: float | None,
               seed: int, run_dir: Path) -> TrainConfig:
    """The harness config of one run. Peers are built by the factory: their config
    keeps ``optimizer='adamw'`` and ``config.json`` names the factory."""
    return dataclasses.replace(
        base, optimizer="adamw" if contender.peer else contender.optimizer, lr=lr,
        optimizer_args={} if contender.peer else dict(contender.optimizer_args),
        plain_lr=None if contender.peer else plain_lr, seed=seed, out=str(run_dir),
        save_every=base.steps, quiet=True, resume=None,
        weights=base.weights if contender.peer else contender.weights)


def _load_finished(run_dir: Path, contender: Contender, lr: float, seed: int,
                   config: TrainConfig) -> RunResult | None:
    """The result of a finished run of the same contender and config, else None."""
    path = run_dir / BENCH_NAME
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    records = read_records(run_dir / METRICS_NAME) if (run_dir / METRICS_NAME).is_file() else []
    if saved.get("config") != _identity(contender, config):
        return None
    return RunResult(contender.label, lr, seed, records, saved["state_bytes"],
                     saved["opt_step_times"], saved.get("failed"))


def _identity(contender: Contender, config: TrainConfig) -> dict:
    """What makes two runs the same run (a finished one with it is reused)."""
    return json.loads(json.dumps({"contender": dataclasses.asdict(contender),
                                  "config": config.to_dict()}, default=str))


def run_one(contender: Contender, lr: float, plain_lr: float | None, base: TrainConfig,
            seed: int, run_dir: Path, data: TokenData | None = None,
            initial_state: dict | None = None) -> RunResult:
    """Train ``contender`` at ``lr`` with ``seed`` into ``run_dir`` (reused when finished)."""
    run_dir = Path(run_dir)
    config = run_config(base, contender, lr, plain_lr, seed, run_dir)
    finished = _load_finished(run_dir, contender, lr, seed, config)
    if finished is not None:
        logger.info("bench: reusing %s", run_dir)
        return finished
    if run_dir.exists():
        shutil.rmtree(run_dir)
    factory = ContenderFactory(contender, lr, plain_lr)
    logger.info("bench: %s lr %g seed %d, %d steps -> %s", contender.label, lr, seed,
                base.steps, run_dir)
    failed = None
    try:
        train(config, optimizer_factory=factory, data=data, initial_state=initial_state)
    except TrainingError as exc:  # diverged: recorded as a failed run, not a crash
        failed = str(exc)
        logger.warning("bench: %s lr %g diverged: %s", contender.label, lr, exc)
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    state = reachable_state_bytes(factory.optimizer) if factory.optimizer is not None else 0
    result = RunResult(contender.label, lr, seed, read_records(run_dir / METRICS_NAME),
                       state, factory.timer.times, failed)
    (run_dir / BENCH_NAME).write_text(json.dumps(
        {"label": contender.label, "lr": lr, "seed": seed, "steps": base.steps,
         "config": _identity(contender, config), "state_bytes": state, "opt_step_times": factory.timer.times, "failed": failed}))
    return result
