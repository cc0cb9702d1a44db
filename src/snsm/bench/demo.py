"""``snsm demo``: AdamW, AdamSN and AdamSNSM train the tiny LLaMA on Shakespeare, side by side.

Same seed, data order, steps and schedule for all three; paper-style learning
rates (Subset-Norm about 10x AdamW's). Writes each run's folder, ``demo.png``
(all curves), ``results.json`` and ``table.md`` under the output folder. A run
folder left by an earlier demo is resumed (and reused once finished).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
from pathlib import Path

from snsm.train.checkpoint import CHECKPOINT_NAME
from snsm.train.config import TrainConfig, default_lr
from snsm.train.loop import METRICS_NAME, _read_records, train
from snsm.train.plots import plot_curves

logger = logging.getLogger(__name__)

DEMO_OPTIMIZERS = {
    "adamw": {},
    "adamw_sn": {},
    # rank 32 of the tiny model's 128-wide matrices; refresh every 100 steps.
    "adamw_snsm": {"rank": 32, "update_gap": 100, "projector": "svd"},
}


def steps_to_reach(records: list[dict], target: float) -> int | None:
    """The first evaluated step whose validation loss is <= target (None if never)."""
    for record in records:
        if "val_loss" in record and record["val_loss"] <= target:
            return record["step"]
    return None


def summarize(runs: dict[str, list[dict]], lrs: dict[str, float]) -> list[dict]:
    """One row per optimizer: final validation loss, steps to AdamW's, memory, step time."""
    evals = {name: [r for r in records if "val_loss" in r] for name, records in runs.items()}
    baseline = evals["adamw"][-1]["val_loss"]
    baseline_steps = steps_to_reach(runs["adamw"], baseline)
    baseline_bytes = next(r["state_bytes"] for r in reversed(runs["adamw"]) if "state_bytes" in r)
    rows = []
    for name, records in runs.items():
        train_records = [r for r in records if "loss" in r]
        final = evals[name][-1]["val_loss"]
        reached = steps_to_reach(records, baseline)
        state = train_records[-1]["state_bytes"]
        rows.append({
            "optimizer": name, "lr": lrs[name], "final_val_loss": round(final, 4),
            "final_val_ppl": round(math.exp(final), 2), "steps_to_adamw_final": reached,
            "steps_ratio_vs_adamw": round(reached / baseline_steps, 3) if reached else None,
            "state_bytes": state, "state_pct_of_adamw": round(100 * state / baseline_bytes, 1),
            "median_step_s": round(statistics.median(r["step_time"] for r in train_records), 4)})
    return rows


def format_table(rows: list[dict]) -> str:
    """A markdown table of the rows."""
    header = ("| optimizer | lr | final val loss | final val ppl | steps to AdamW's final "
              "| ratio | state MiB | % of AdamW | median step s |")
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['optimizer']} | {r['lr']:g} | {r['final_val_loss']:.4f} | "
                     f"{r['final_val_ppl']:.2f} | {r['steps_to_adamw_final'] or 'never'} | "
                     f"{r['steps_ratio_vs_adamw'] or '-'} | {r['state_bytes'] / 2**20:.2f} | "
                     f"{r['state_pct_of_adamw']:.1f} | {r['median_step_s']:.3f} |")
    return "\n".join(lines)


def run_demo(out: str | Path = "runs/demo", base: TrainConfig | None = None) -> list[dict]:
    """Train the three optimizers with ``base``'s settings; returns the table's rows."""
    out = Path(out)
    base = base or TrainConfig(preset="tiny", steps=300, eval_every=25, save_every=100)
    runs, lrs = {}, {}
    for name, args in DEMO_OPTIMIZERS.items():
        run_dir = out / name
        config = dataclasses.replace(base, optimizer=name, lr=default_lr(name),
                                     optimizer_args={**args, **base.optimizer_args}
                                     if name == "adamw_snsm" else {}, out=str(run_dir))
        logger.info("demo: training %s (lr %g)", name, config.lr)
        if (run_dir / CHECKPOINT_NAME).exists():  # an earlier demo: finish (or reuse) it
            config = dataclasses.replace(config, resume=str(run_dir))
        train(config)
        runs[name] = _read_records(run_dir / METRICS_NAME)
        lrs[name] = config.lr
    rows = summarize(runs, lrs)
    plot_curves(runs, out / "demo.png")
    (out / "results.json").write_text(json.dumps({"rows": rows, "config": base.to_dict()},
                                                 indent=2, default=str))
    (out / "table.md").write_text(format_table(rows) + "\n")
    return rows
