"""One run of the bench: one contender at one lr and seed, on the training harness, and the
compact result the run pool (:mod:`snsm_workbench.bench.run_pool`) saves of it.

Every run of a suite uses the same model preset, batch size, schedule and token data; seed
``s`` fixes both the initial weights and the batch order, so all contenders see identical data
in the same order. The harness's run folder is started afresh (the pool's cache decides what
is reused) and its checkpoint deleted after the run.

The saved result (one JSON object per run): ``steps`` and ``val_loss`` (the evaluations),
``final_train_loss``, ``state_bytes`` (the optimizer state after the run), ``failed`` (None, or
why the run diverged), ``train_steps`` and ``step_time`` (every logged training step and its
seconds), ``opt_step_times`` (every ``optimizer.step()``, seconds) and ``identity`` (what
made the run: :func:`run_identity`). The pool adds ``key`` and ``wall_s``. Runs saved before
the step-time lists and the identity existed (the standard record's) lack those four keys.
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

# Fields of a contender that change what a run does (its grid, default lr and seed count do not).
_RUN_FIELDS = ("label", "optimizer", "peer", "optimizer_args", "route", "in_backward", "weights")
# Fields of a run's config that name where it is written, not what it computes.
_PLACE_FIELDS = ("out", "resume", "cache_dir", "quiet")


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


def run_identity(contender: Contender, config: TrainConfig) -> dict:
    """What makes two runs the same run, as JSON values: the contender's run-affecting fields
    and the harness config of the run (:func:`run_config`) without where it is written."""
    run = {k: v for k, v in config.to_dict().items() if k not in _PLACE_FIELDS}
    who = {k: getattr(contender, k) for k in _RUN_FIELDS}
    return json.loads(json.dumps({"contender": who, "config": run}, default=str))


def train_one(contender: Contender, lr: float, plain_lr: float | None, base: TrainConfig,
              seed: int, run_dir: Path, data: TokenData | None = None,
              initial_state: dict | None = None) -> RunResult:
    """Train ``contender`` at ``lr`` with ``seed`` into ``run_dir`` (emptied first). A run
    that diverges is a failed result, not an error."""
    run_dir = Path(run_dir)
    config = run_config(base, contender, lr, plain_lr, seed, run_dir)
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
    return RunResult(contender.label, lr, seed, read_records(run_dir / METRICS_NAME),
                     state, factory.timer.times, failed)


def _rounded(values: list[float]) -> list[float]:
    return [float(f"{v:.5g}") for v in values]


def compact(result: RunResult) -> dict:
    """The saved result of a run (see the module docstring; ``key`` and ``wall_s`` not yet)."""
    evals = [r for r in result.records if "val_loss" in r]
    timed = [r for r in result.records if "step_time" in r]
    return {"steps": [r["step"] for r in evals], "val_loss": [r["val_loss"] for r in evals],
            "final_train_loss": next((r["loss"] for r in reversed(result.records)
                                      if "loss" in r), None),
            "state_bytes": result.state_bytes, "failed": result.failed,
            "train_steps": [r["step"] for r in timed],
            "step_time": _rounded([r["step_time"] for r in timed]),
            "opt_step_times": _rounded(result.opt_step_times)}


def from_compact(label: str, saved: dict) -> RunResult:
    """A saved result back as a :class:`RunResult` (its evaluations and step times as the
    metric records they came from)."""
    key = saved["key"]
    records = [{"step": s, "val_loss": v} for s, v in zip(saved["steps"], saved["val_loss"])]
    records += [{"step": s, "step_time": t} for s, t in zip(saved.get("train_steps", []),
                                                          saved.get("step_time", []))]
    records.sort(key=lambda r: r["step"])
    return RunResult(label, key["lr"], key["seed"], records, saved["state_bytes"],
                     list(saved.get("opt_step_times", [])), saved["failed"])
