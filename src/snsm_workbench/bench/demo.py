"""``snsm demo``: the standard record's tuned optimizers train the tiny LLaMA on Shakespeare.

The contenders are the ``demo`` suite's (``benchmarks/suites/demo.json``): AdamW, AdamSNSM,
AdamSNSM lean (8-bit states, pure-bf16 weights with stochastic rounding) and snsm's Muon, each
at the lrs the standard record tuned (:data:`RECORD_SOURCES`; the file was written from the
record and a test checks they are equal). Same model as the record (its preset, vocabulary,
sequence length and batch), seed, data order, steps and warmup + cosine schedule for all; fewer
steps than the record's 1000, so that the demo takes minutes.

Per run: final validation loss; the first evaluated step at or below AdamW's final loss (and
its fraction of AdamW's); optimizer state; memory = weights + gradients + state (the weights'
and gradients' bytes from the parameter count and the weights' dtype) as shares of AdamW's.
Writes each run's folder, ``demo.png`` (loss curves beside memory bars), ``results.json`` and
``table.md`` under the output folder. A run folder of an earlier demo is resumed (reused once
finished; started afresh when its settings differ); its optimizer-step times are kept
(``opt_step_times.json``), so a rerun reports the same timings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import statistics
import textwrap
import time
from pathlib import Path

from snsm_workbench.bench.contenders import Contender, ContenderFactory
from snsm_workbench.bench.run_one import RunResult
from snsm_workbench.bench.suite_files import SUITES_DIR, load_suite_file
from snsm_workbench.bench.suites import get_suite
from snsm_workbench.bench.summary import summarize
from snsm_workbench.train.checkpoint import CHECKPOINT_NAME
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import train
from snsm_workbench.train.metrics import METRICS_NAME, read_records
from snsm_workbench.train.plots import TRAIN_ALPHA, _save_atomically as save_atomically
from snsm_workbench.train.record import read_run_record
from snsm_workbench.util.errors import ConflictError
from snsm_workbench.util.tables import markdown_table, text_table

logger = logging.getLogger(__name__)

STANDARD_RECORD = SUITES_DIR.parent / "records" / "2026-11-29-standard"
# Each demo contender's lrs in the standard record's results.json: (stage, label). The lean
# level takes AdamSNSM's, as the record's lean levels do; snsm's Muon takes torch.optim.Muon's.
RECORD_SOURCES = {"adamw": ("headline", "adamw"), "adamw_snsm": ("headline", "adamw_snsm"),
                  "adamw_snsm_lean": ("headline", "adamw_snsm"), "muon": ("peers", "muon")}
TIMES_NAME = "opt_step_times.json"  # a run's optimizer-step times (s), kept across reruns
MiB = 2 ** 20


def load_record(record_dir: Path = STANDARD_RECORD) -> dict:
    """The standard record's ``results.json``."""
    return json.loads((Path(record_dir) / "results.json").read_text())


def record_lrs(record: dict) -> dict[str, tuple[float, float | None]]:
    """Each demo contender's (matrix lr, plain-group lr) as the standard record tuned them."""
    return {label: (record[stage][source]["lr"], record[stage][source]["plain_lr"])
            for label, (stage, source) in RECORD_SOURCES.items()}


def record_sentence(record: dict, record_dir: Path = STANDARD_RECORD) -> str:
    """What the standard record concludes, in one sentence, its numbers from the record."""
    state = record["state"]
    share = {label: 100 * state[label] / state["adamw"]
             for label in ("adamw_sn", "adamw_snsm", "adamw_snsm_8bit_pure_bf16", "muon")}
    settings = record["settings"]
    where = Path(record_dir)
    where = where.relative_to(SUITES_DIR.parents[1]) if where.is_relative_to(
        SUITES_DIR.parents[1]) else where
    return (f"The standard record ({where / 'report.md'}: {settings['full_steps']} steps, "
            f"every lr tuned, {settings['seeds']} seeds) finds AdamSN and AdamSNSM level with "
            f"tuned AdamW in loss at {share['adamw_sn']:.1f}% and {share['adamw_snsm']:.1f}% "
            f"of its optimizer state ({share['adamw_snsm_8bit_pure_bf16']:.1f}% lean), and "
            f"torch.optim.Muon clearly better in loss and steps with "
            f"{share['muon']:.1f}% of AdamW's state.")


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
    plot_demo({label: run[0].records for label, run in runs.items()}, rows, out / "demo.png")
    (out / "results.json").write_text(json.dumps(
        {"rows": rows, "config": base.to_dict(), "wall_s": round(time.perf_counter() - started, 1)},
        indent=2, default=str))
    (out / "table.md").write_text(demo_report(rows, base.steps, markdown=True) + "\n")
    return rows


def _steps(row: dict) -> str:
    if row["steps_to_adamw_final"] is None:
        return "not reached"
    return f"{row['steps_to_adamw_final']} ({row['steps_ratio_vs_adamw']:.2f}x)"


def _lr(row: dict) -> str:
    return f"{row['lr']:g}" + ("" if row.get("plain_lr") is None else f"/{row['plain_lr']:g}")


COLUMNS = [("optimizer", "optimizer"), ("lr mat/plain", _lr),
           ("val loss", lambda r: "diverged" if r["final_val_loss"] is None
            else f"{r['final_val_loss']:.4f}"),
           ("steps to AdamW", _steps),
           ("state/AdamW", lambda r: f"{r['state_pct_of_adamw']:.1f}%"),
           ("memory/AdamW", lambda r: f"{r['total_pct_of_adamw']:.1f}%"),
           ("s/step", lambda r: "-" if r["median_step_s"] is None
            else f"{r['median_step_s']:.3f}")]
LEGEND = (  # one line each, at most 100 characters
    "lr mat/plain: matrices / plain group (embedding and norms; Muon's: the head too).",
    "val loss: final validation loss. steps to AdamW: first evaluation at or below AdamW's final",
    "loss (fraction of AdamW's steps). state/AdamW: optimizer state; memory/AdamW: weights +",
    "gradients + optimizer state; both as shares of AdamW's. s/step: median training step (s).",
    "adamw_snsm_lean: 8-bit states, pure-bf16 weights. muon: snsm's Muon, torch Muon's tuned lrs.")


def spread_sentence(record: dict, steps: int) -> str:
    """How far this demo is from the record's evidence: its seeds and steps, and the spread of
    AdamW's final loss over the record's seeds (sample sd)."""
    finals = [run["val_loss"][-1] for run in record["headline"]["adamw"]["runs"]]
    settings = record["settings"]
    return (f"This demo is one seed of {steps} steps (the record: {settings['seeds']} seeds of "
            f"{settings['full_steps']}); AdamW's final loss there varies by "
            f"{statistics.stdev(finals):.3f} (sd) from seed to seed, so a smaller gap here is "
            f"not evidence either way.")


def _mean_curve(runs: list[dict]) -> list[float]:
    return [statistics.mean(values) for values in zip(*(run["val_loss"] for run in runs))]


def muon_sentence(record: dict) -> str:
    """When torch.optim.Muon's mean loss (over the record's seeds) goes below AdamW's for good."""
    steps = record["headline"]["adamw"]["runs"][0]["steps"]
    pairs = list(zip(steps, _mean_curve(record["headline"]["adamw"]["runs"]),
                     _mean_curve(record["peers"]["muon"]["runs"])))
    ahead = next((step for i, (step, _, _) in enumerate(pairs)
                  if all(muon <= adamw for _, adamw, muon in pairs[i:])), None)
    where = f"from step {ahead} of {steps[-1]} on" if ahead is not None else "never"
    return (f"In the record, Muon's mean loss is below AdamW's only {where}: a short run "
            f"does not show its lead.")


def demo_report(rows: list[dict], steps: int, markdown: bool = False,
                record_dir: Path = STANDARD_RECORD) -> str:
    """The demo's table (runs of ``steps`` steps), its legend and the standard record's
    conclusion."""
    table = (markdown_table if markdown else text_table)(rows, COLUMNS)
    legend = " ".join(LEGEND) if markdown else "\n".join(LEGEND)
    record = load_record(record_dir)
    prose = [record_sentence(record, record_dir),
             f"{spread_sentence(record, steps)} {muon_sentence(record)}"]
    prose = prose if markdown else [textwrap.fill(text, 100) for text in prose]
    return "\n\n".join([table, legend, *prose])


def plot_demo(records: dict[str, list[dict]], rows: list[dict], path: Path) -> Path:
    """One figure: validation (and light training) loss against steps beside each run's memory
    (weights, gradients, optimizer state) as stacked bars labelled with its share of AdamW's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    curves, bars = fig.subplots(1, 2, width_ratios=(3, 2))
    for index, (label, run) in enumerate(records.items()):
        color = f"C{index % 10}"
        train = [(r["step"], r["loss"]) for r in run if "loss" in r]
        evals = [(r["step"], r["val_loss"]) for r in run if "val_loss" in r]
        if train:
            curves.plot(*zip(*train), color=color, alpha=TRAIN_ALPHA, linewidth=1)
        if evals:
            curves.plot(*zip(*evals), color=color, marker="o", markersize=3, label=label)
    losses = [r["final_val_loss"] for r in rows if r["final_val_loss"] is not None]
    if losses:  # the start's loss (~7.6) would flatten the differences that matter
        curves.set_ylim(min(losses) - 0.15, max(losses) + 1.2)
    curves.set(xlabel="step", ylabel="loss (dots: validation)", title="loss")
    curves.grid(True, alpha=0.3)
    curves.legend(fontsize="small")
    labels = [row["optimizer"] for row in rows]
    left = [0.0] * len(rows)
    for part, color in (("weights", "0.55"), ("grads", "0.8"), ("state", f"C{len(records)}")):
        sizes = [row["memory"][part] / MiB for row in rows]
        bars.barh(labels, sizes, left=left, color=color, label=part)
        left = [a + b for a, b in zip(left, sizes)]
    for y, (row, end) in enumerate(zip(rows, left)):
        bars.text(end, y, f" {row['total_pct_of_adamw']:.0f}% (state {row['state_pct_of_adamw']:.0f}%)",
                  va="center", fontsize="small")
    bars.invert_yaxis()
    bars.set_xlim(0, max(left) * 1.45)
    bars.set(xlabel="MiB", title="memory, % of AdamW's (its state's share)")
    bars.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    return save_atomically(fig, path)
