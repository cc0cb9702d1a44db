"""``snsm demo``: AdamW, AdamSN and AdamSNSM train the tiny LLaMA on Shakespeare, side by side.

The contenders (optimizer, lr, arguments) are the ``demo`` suite's
(``benchmarks/suites/demo.json``): same seed, data order, steps and schedule for all three;
paper-style learning rates (Subset-Norm about 10x AdamW's). Writes each run's folder, ``demo.png``
(all curves), ``results.json`` and ``table.md`` under the output folder. A run
folder left by an earlier demo is resumed (and reused once finished).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from snsm_workbench.bench.contenders import Contender, ContenderFactory
from snsm_workbench.bench.table_report import format_table
from snsm_workbench.bench.run_one import RunResult
from snsm_workbench.bench.suites import get_suite
from snsm_workbench.bench.summary import summarize
from snsm_workbench.train.checkpoint import CHECKPOINT_NAME
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import train
from snsm_workbench.train.metrics import METRICS_NAME, read_records
from snsm_workbench.train.plots import plot_curves

logger = logging.getLogger(__name__)

def _as_run(name: str, lr: float, seed: int, records: list[dict],
            opt_step_times: list[float]) -> RunResult:
    """A finished harness run as the bench's record of it (state bytes from its metrics)."""
    state = next(r["state_bytes"] for r in reversed(records) if "state_bytes" in r)
    return RunResult(name, lr, seed, records, state, opt_step_times)


def run_demo(out: str | Path = "runs/demo", base: TrainConfig | None = None) -> list[dict]:
    """Train the three optimizers with ``base``'s settings; returns the table's rows."""
    out = Path(out)
    suite = get_suite("demo")
    base = base or TrainConfig(preset=suite.preset, steps=suite.steps,
                               eval_every=suite.eval_every, save_every=100)
    runs, lrs = {}, {}
    for contender in suite.contenders:
        name, args = contender.optimizer, contender.optimizer_args
        run_dir = out / name
        config = dataclasses.replace(base, optimizer=name, lr=contender.lr,
                                     optimizer_args={**args, **base.optimizer_args}
                                     if name == "adamw_snsm" else {}, out=str(run_dir))
        logger.info("demo: training %s (lr %g)", name, config.lr)
        if (run_dir / CHECKPOINT_NAME).exists():  # an earlier demo: finish (or reuse) it
            config = dataclasses.replace(config, resume=str(run_dir))
        factory = ContenderFactory(Contender(name, name, False, config.lr, (),
                                             config.optimizer_args), config.lr, None)
        train(config, optimizer_factory=factory)  # the registry's optimizer, its steps timed
        runs[name] = [_as_run(name, config.lr, base.seed, read_records(run_dir / METRICS_NAME),
                              factory.timer.times)]
        lrs[name] = config.lr
    rows, _ = summarize(runs, lrs)
    plot_curves({name: run[0].records for name, run in runs.items()}, out / "demo.png")
    (out / "results.json").write_text(json.dumps({"rows": rows, "config": base.to_dict()},
                                                 indent=2, default=str))
    (out / "table.md").write_text(format_table(rows) + "\n")
    return rows
