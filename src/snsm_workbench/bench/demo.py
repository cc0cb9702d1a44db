"""``snsm demo``: the standard record's tuned optimizers train the tiny LLaMA on Shakespeare.

The contenders are the ``demo`` suite's (``src/snsm_workbench/suites/demo.json``): AdamW,
AdamSNSM, AdamSNSM lean (8-bit states, pure-bf16 weights with stochastic rounding) and snsm's
Muon, each at the lrs the standard record tuned (:mod:`~snsm_workbench.bench.demo_record`; the
file was written from the record and a test checks they are equal). Same model as the record (its
preset, vocabulary, sequence length and batch), seed, data order, steps and warmup + cosine
schedule for all; fewer steps than the record's 1000, so that the demo takes minutes.

Per run: final validation loss; the first evaluated step at or below AdamW's final loss (and
its fraction of AdamW's); optimizer state; memory = weights + gradients + state (the weights'
and gradients' bytes from the parameter count and the weights' dtype) as shares of AdamW's.
The table also gives the record's mean final loss of the same configuration (its 1000 steps,
mean over its seeds), because a short demo's ranking is not the record's. Writes each run's
folder, ``demo.png`` (:mod:`~snsm_workbench.bench.demo_figure`), ``results.json`` (the rows
and each run's curves, so the figure can be redrawn: :func:`redraw`) and ``table.md`` under
the output folder. A run folder of an earlier demo is resumed (reused once
finished; started afresh when its settings differ); its optimizer-step times are kept
(``opt_step_times.json``), so a rerun reports the same timings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import textwrap
import time
from pathlib import Path

from snsm_workbench.bench.contenders import Contender, ContenderFactory
from snsm_workbench.bench.demo_figure import plot_demo, run_curves
from snsm_workbench.bench.demo_record import (STANDARD_RECORD, load_record, muon_sentence,
                                              record_final, record_sentence, spread_sentence)
from snsm_workbench.bench.run_one import RunResult
from snsm_workbench.bench.suite_files import load_suite_file
from snsm_workbench.bench.suites import get_suite
from snsm_workbench.bench.summary import summarize
from snsm_workbench.train.checkpoint import CHECKPOINT_NAME
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import train
from snsm_workbench.train.metrics import METRICS_NAME, read_records
from snsm_workbench.train.record import read_run_record
from snsm_workbench.util.errors import ConflictError
from snsm_workbench.util.tables import markdown_table, text_table

logger = logging.getLogger(__name__)

TIMES_NAME = "opt_step_times.json"  # a run's optimizer-step times (s), kept across reruns


def demo_config(steps: int | None = None, eval_every: int | None = None, seed: int = 0,
                quiet: bool = False, **given) -> TrainConfig:
    """The demo's base run settings: the demo suite's steps, evaluations and batch, the
    standard suite's vocabulary and sequence length, unless ``given``."""
    suite = get_suite("demo")
    settings = load_suite_file("standard")["settings"]
    model = {"vocab_size": settings["vocab_size"], "seq_len": settings["seq_len"],
             "batch_size": suite.batch_size, "eval_batches": suite.eval_batches}
    return TrainConfig(preset=suite.preset, steps=steps or suite.steps,
                       eval_every=eval_every or suite.eval_every, save_every=100, seed=seed,
                       quiet=quiet, **{**model, **given})


def _run_config(base: TrainConfig, contender: Contender, run_dir: Path) -> TrainConfig:
    """One run's settings: ``base``'s, with the contender's optimizer, lrs and weights (``base``'s
    optimizer arguments override the contender's own, for a smaller smoke run)."""
    args = {**contender.optimizer_args, **{key: value for key, value in
                                           base.optimizer_args.items()
                                           if key in contender.optimizer_args}}
    return dataclasses.replace(base, optimizer=contender.optimizer, lr=contender.lr,
                               plain_lr=contender.plain_lr, weights=contender.weights,
                               optimizer_args=args, out=str(run_dir))


def _fit(config: TrainConfig, contender: Contender) -> list[float]:
    """Train ``config`` with ``contender``'s optimizer (routing included); its step times."""
    factory = ContenderFactory(dataclasses.replace(contender, optimizer_args=config.optimizer_args),
                               config.lr, config.plain_lr)
    train(config, optimizer_factory=factory)
    return factory.timer.times


def train_contender(base: TrainConfig, contender: Contender, run_dir: Path) -> RunResult:
    """Train (resume, or reuse) one run; its optimizer-step times merged with the earlier
    demo's (a finished run reused takes none, a resumed one adds its new steps')."""
    config = _run_config(base, contender, run_dir)
    times_file = run_dir / TIMES_NAME
    times = None
    if (run_dir / CHECKPOINT_NAME).exists():  # an earlier demo: finish (or reuse) it
        earlier = json.loads(times_file.read_text()) if times_file.exists() else []
        try:
            times = earlier + _fit(dataclasses.replace(config, resume=str(run_dir)), contender)
        except ConflictError as exc:
            logger.warning("demo: %s was trained with other settings (%s); training afresh",
                           run_dir, exc)
            shutil.rmtree(run_dir)
    if times is None:
        times = _fit(config, contender)
    times_file.write_text(json.dumps(times))
    records = read_records(run_dir / METRICS_NAME)
    state = next(r["state_bytes"] for r in reversed(records) if "state_bytes" in r)
    return RunResult(contender.label, contender.lr, base.seed, records, state, times)


def memory_bytes(run_dir: Path, state_bytes: int) -> dict[str, int]:
    """Weights, gradients (the weights' dtype) and optimizer state of a run, in bytes."""
    record = read_run_record(run_dir)
    per_weight = 2 if record["config"].get("weights") == "bf16" else 4
    weights = record["model_parameters"] * per_weight
    return {"weights": weights, "grads": weights, "state": state_bytes}


def _add_memory(rows: list[dict], out: Path) -> None:
    """Each row's memory bytes and its state and total memory as percentages of AdamW's."""
    for row in rows:
        row["memory"] = memory_bytes(out / row["optimizer"], row["state_bytes"])
        row["total_bytes"] = sum(row["memory"].values())
    base = next(row for row in rows if row["optimizer"] == "adamw")
    for row in rows:
        row["total_pct_of_adamw"] = round(100 * row["total_bytes"] / base["total_bytes"], 1)


def _progress(index: int, count: int, started: float, label: str, loss: float) -> None:
    elapsed = time.perf_counter() - started
    left = elapsed / (index + 1) * (count - index - 1)
    logger.info("demo [%d/%d] %s: final val loss %.4f; %s elapsed, about %s left",
                index + 1, count, label, loss, _minutes(elapsed), _minutes(left))


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def run_demo(out: str | Path = "runs/demo", base: TrainConfig | None = None) -> list[dict]:
    """Train the demo suite's contenders with ``base``'s settings; returns the table's rows."""
    out, base = Path(out), base or demo_config()
    contenders = get_suite("demo").contenders
    runs, started = {}, time.perf_counter()
    for index, contender in enumerate(contenders):
        logger.info("demo [%d/%d] %s: lr %g / plain %s, %d steps", index + 1, len(contenders),
                    contender.label, contender.lr, contender.plain_lr, base.steps)
        runs[contender.label] = [train_contender(base, contender, out / contender.label)]
        _progress(index, len(contenders), started, contender.label,
                  runs[contender.label][0].final_val_loss)
    rows, _ = summarize(runs, {c.label: c.lr for c in contenders})
    for row, contender in zip(rows, contenders):
        row["plain_lr"] = contender.plain_lr
    _add_memory(rows, out)
    results = {"rows": rows, "config": base.to_dict(),
               "curves": {label: run_curves(run[0].records) for label, run in runs.items()},
               "wall_s": round(time.perf_counter() - started, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    redraw(out)
    return rows


def _steps(row: dict) -> str:
    if row["steps_to_adamw_final"] is None:
        return "not reached"
    return f"{row['steps_to_adamw_final']} ({row['steps_ratio_vs_adamw']:.2f}x)"


def _lr(row: dict) -> str:
    return f"{row['lr']:g}" + ("" if row.get("plain_lr") is None else f"/{row['plain_lr']:g}")


COLUMNS = [("optimizer", "optimizer"), ("lr mat/plain", _lr),
           ("loss", lambda r: "diverged" if r["final_val_loss"] is None
            else f"{r['final_val_loss']:.4f}"),
           ("record loss", lambda r: f"{r['record_val_loss']:.4f}"),
           ("steps to AdamW", _steps),
           ("state", lambda r: f"{r['state_pct_of_adamw']:.1f}%"),
           ("memory", lambda r: f"{r['total_pct_of_adamw']:.1f}%"),
           ("s/step", lambda r: "-" if r["median_step_s"] is None
            else f"{r['median_step_s']:.3f}")]
LEGEND = (  # one line each, at most 100 characters
    "lr mat/plain: matrices / plain group (embedding and norms; Muon's: the head too).",
    "loss: final validation loss; record loss: the standard record's, mean of its seeds at its",
    "full horizon. steps to AdamW: first evaluation at or below AdamW's final loss (fraction of",
    "AdamW's steps). state: optimizer state; memory: weights + gradients + optimizer state; both",
    "as shares of AdamW's. s/step: median training step (s). adamw_snsm_lean: 8-bit states,",
    "pure-bf16 weights. muon: snsm's Muon at torch Muon's tuned lrs (the record: torch's).")


def demo_report(rows: list[dict], steps: int, markdown: bool = False,
                record_dir: Path = STANDARD_RECORD) -> str:
    """The demo's table (runs of ``steps`` steps), its legend and the standard record's
    conclusion."""
    record = load_record(record_dir)
    rows = [{**row, "record_val_loss": record_final(record, row["optimizer"])} for row in rows]
    table = (markdown_table if markdown else text_table)(rows, COLUMNS)
    legend = " ".join(LEGEND) if markdown else "\n".join(LEGEND)
    prose = [record_sentence(record, record_dir),
             f"{spread_sentence(record, steps)} {muon_sentence(record)}"]
    prose = prose if markdown else [textwrap.fill(text, 100) for text in prose]
    return "\n\n".join([table, legend, *prose])


def redraw(out: str | Path, record_dir: Path = STANDARD_RECORD) -> None:
    """``demo.png`` and ``table.md`` of the demo folder ``out`` from its ``results.json``."""
    out = Path(out)
    results = json.loads((out / "results.json").read_text())
    steps = results["config"]["steps"]
    plot_demo(results["curves"], results["rows"], load_record(record_dir), steps,
              out / "demo.png")
    (out / "table.md").write_text(demo_report(results["rows"], steps, markdown=True,
                                              record_dir=record_dir) + "\n")
