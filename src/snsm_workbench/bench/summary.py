"""From runs to the table: one row per contender, measured against AdamW.

Per contender, over its seeds: the mean validation-loss curve (at the common
evaluation steps); ``final_val_loss`` its last point and ``final_val_loss_std`` the
spread of the seeds' final losses (sample standard deviation, 0 for one seed);
``final_val_ppl = exp(final_val_loss)``; ``steps_to_adamw_final`` the first evaluated
step where the mean curve is at or below AdamW's final mean loss (None if never)
and its ratio to AdamW's own; ``state_bytes`` the optimizer state after the run
(every tensor, projector bases included); ``median_step_s`` the median training
step (forward, backward, clipping, optimizer) and ``median_opt_step_ms`` the median
``optimizer.step()`` alone, both over every seed's steps after the first
``WARMUP_STEPS``, each with its ratio to AdamW's. When ``timings`` (from
:func:`snsm_workbench.bench.interleaved.interleaved_step_times`) are given, the two medians and
their ratios come from them, and the runs' own medians are kept as ``run_median_step_s``.
"""

from __future__ import annotations

import math
import statistics

from snsm_workbench.bench.run_one import RunResult
from snsm_workbench.bench.statistics import mean_curve

WARMUP_STEPS = 3  # the first steps allocate state and warm caches: left out of the medians


def steps_to_reach(records: list[dict], target: float) -> int | None:
    """The first evaluated step whose validation loss is <= target (None if never)."""
    for record in records:
        if "val_loss" in record and record["val_loss"] <= target:
            return record["step"]
    return None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(value: float | None, base: float | None, digits: int = 3) -> float | None:
    if value is None or not base:
        return None
    return round(value / base, digits)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def contender_stats(runs: list[RunResult]) -> dict:
    """The per-contender numbers that do not depend on AdamW."""
    steps, curve = mean_curve([{r["step"]: r["val_loss"] for r in run.records
                                if "val_loss" in r} for run in runs])
    finals = [run.final_val_loss for run in runs]
    final = curve[-1] if curve and all(math.isfinite(f) for f in finals) else math.inf
    step_times = [r["step_time"] for run in runs for r in run.records
                  if "step_time" in r and r["step"] > WARMUP_STEPS]
    opt_times = [t for run in runs for t in run.opt_step_times[WARMUP_STEPS:]]
    spread = statistics.stdev(finals) if len(finals) > 1 and math.isfinite(final) else 0.0
    return {"steps": steps, "curve": curve, "final": final, "spread": spread,
            "state_bytes": runs[0].state_bytes, "median_step_s": _median(step_times),
            "median_opt_step_ms": None if not opt_times else 1e3 * _median(opt_times),
            "failed": next((run.failed for run in runs if run.failed), None)}


def summarize(runs: dict[str, list[RunResult]], lrs: dict[str, float],
              baseline: str = "adamw", timings: dict[str, dict] | None = None
              ) -> tuple[list[dict], dict[str, dict]]:
    """(rows, curves): one row per label of ``runs``, ratios against ``baseline``."""
    if baseline not in runs:
        raise ValueError(f"the baseline {baseline!r} is not among the runs {list(runs)}")
    stats = {label: contender_stats(label_runs) for label, label_runs in runs.items()}
    for label, s in stats.items():
        s["run_median_step_s"] = s["median_step_s"]
        if timings and label in timings:
            s["median_step_s"] = timings[label]["step_s"]
            s["median_opt_step_ms"] = timings[label]["opt_step_ms"]
    base = stats[baseline]
    base_records = [{"step": s, "val_loss": v} for s, v in zip(base["steps"], base["curve"])]
    base_steps = steps_to_reach(base_records, base["final"])
    rows, curves = [], {}
    for label, s in stats.items():
        records = [{"step": step, "val_loss": v} for step, v in zip(s["steps"], s["curve"])]
        reached = steps_to_reach(records, base["final"]) if math.isfinite(base["final"]) else None
        final = _finite(s["final"])
        rows.append({
            "optimizer": label, "lr": lrs[label],
            "final_val_loss": None if final is None else round(final, 4),
            "final_val_loss_std": round(s["spread"], 4),
            "final_val_ppl": None if final is None else round(math.exp(final), 2),
            "steps_to_adamw_final": reached,
            "steps_ratio_vs_adamw": _ratio(reached, base_steps),
            "state_bytes": s["state_bytes"],
            "state_pct_of_adamw": None if not base["state_bytes"] else
            round(100 * s["state_bytes"] / base["state_bytes"], 1),
            "median_step_s": None if s["median_step_s"] is None else round(s["median_step_s"], 4),
            "step_time_ratio_vs_adamw": _ratio(s["median_step_s"], base["median_step_s"]),
            "median_opt_step_ms": None if s["median_opt_step_ms"] is None
            else round(s["median_opt_step_ms"], 3),
            "opt_step_ratio_vs_adamw": _ratio(s["median_opt_step_ms"],
                                              base["median_opt_step_ms"]),
            "run_median_step_s": None if s["run_median_step_s"] is None
            else round(s["run_median_step_s"], 4),
            "timing": "interleaved" if timings and label in timings else "runs",
            "seeds": len(runs[label]), "failed": s["failed"]})
        curves[label] = {"step": s["steps"], "val_loss": [round(v, 5) for v in s["curve"]]}
    return rows, curves
