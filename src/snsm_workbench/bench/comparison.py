"""The numbers of the staged suite's report, from its results: comparisons against a baseline.

Definitions (over seeds, 95% t intervals from :mod:`snsm_workbench.bench.statistics`):

* loss: mean ± sd of the final validation losses; ``Δ loss`` = mean - AdamW's mean, with its
  paired interval when both ran the same seeds (same seed, same data order), else Welch's
  (a one-seed row against 3-seed AdamW: the single-case form, AdamW's variance borrowed);
* steps: per seed pair, the interpolated step at which the row's seed first reaches the final
  loss of AdamW's run with the same seed, as a fraction of the horizon (AdamW's budget);
  the estimate is the geometric mean over seeds and its interval the paired t interval of the
  log fractions (``exp`` of it); "not reached" if some seed never does;
* verdict (:func:`verdict`): "clearly" fewer steps / lower / higher loss only when the
  interval excludes 1 / 0 (the test clears the 95% bar); otherwise a "lead" (lower loss
  inside the noise) or "level";
* memory at equal quality: the smallest optimizer state among a method's seeded
  configurations not clearly worse than AdamW (Δ loss interval not wholly above 0);
* state: each configuration's 1-step measurement (``state`` in the results) where there is
  one, else the size its runs recorded.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

from snsm_workbench.bench.run_pool import final_loss
from snsm_workbench.bench.statistics import (difference_interval, log_ratio_interval,
                                             mean_curve, mean_sd,
                                             steps_to_target)

BASELINE = "adamw"


def with_measured_state(results: dict) -> tuple[dict, dict[str, tuple[int, int]]]:
    """``results`` with the ``state_bytes`` of every run on the suite's preset replaced by its
    configuration's 1-step measurement (on that preset), and {label: (recorded, measured)}
    for the labels whose runs recorded another size."""
    measured, changed = results.get("state") or {}, {}
    preset = results["settings"]["preset"]

    def walk(value):
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        key = value.get("key")
        if key and key["preset"] == preset and key["label"] in measured \
                and "state_bytes" in value:
            label = key["label"]
            if value["state_bytes"] != measured[label]:
                changed.setdefault(label, (value["state_bytes"], measured[label]))
            return {**value, "state_bytes": measured[label]}
        return {k: walk(v) for k, v in value.items()}
    return walk(results), changed


def finals(runs: list[dict]) -> list[float]:
    """Each run's last validation loss (+inf: failed)."""
    return [final_loss(r) for r in runs]


def steps_fraction(runs: list[dict], baseline: list[dict], horizon: int) -> float:
    """Steps at which the mean curve of ``runs`` reaches the baseline's mean final loss,
    / horizon (inf: never reached; the baseline itself gives about 1)."""
    target = statistics.fmean(finals(baseline))
    curve = mean_curve([dict(zip(r["steps"], r["val_loss"])) for r in runs])
    steps = steps_to_target(*curve, target)
    return math.inf if steps is None else steps / horizon


def finals_by_seed(runs: list[dict]) -> dict[int, float]:
    """{seed: final loss} (a run without a recorded seed keys by its position)."""
    return {r.get("key", {}).get("seed", i): final_loss(r) for i, r in enumerate(runs)}


def seed_steps_fractions(runs: list[dict], baseline: list[dict], horizon: int) -> list[float]:
    """Per seed that both ran: the step at which ``runs``' seed first reaches the final loss of
    the baseline's same seed, / horizon (inf: never reached)."""
    base = {r.get("key", {}).get("seed", i): r for i, r in enumerate(baseline)}
    fractions = []
    for i, run in enumerate(runs):
        seed = run.get("key", {}).get("seed", i)
        if seed in base:
            steps = steps_to_target(run["steps"], run["val_loss"], final_loss(base[seed]))
            fractions.append(math.inf if steps is None else steps / horizon)
    return fractions


def compare(runs: list[dict], baseline: list[dict], horizon: int) -> dict:
    """Loss, Δ loss and steps fraction against ``baseline``, each with its test (an
    :class:`~snsm_workbench.bench.statistics.Interval`) and its bounds."""
    losses = finals(runs)
    if not all(math.isfinite(f) for f in losses):
        return {"loss": None, "sd": None, "seeds": len(runs), "failed": True}
    mean, sd = mean_sd(losses)
    delta = difference_interval(finals_by_seed(runs), finals_by_seed(baseline))
    fractions = seed_steps_fractions(runs, baseline, horizon)
    steps = log_ratio_interval(fractions) if fractions else None
    return {"loss": mean, "sd": sd, "seeds": len(runs), "failed": False,
            "delta": delta.estimate, "delta_ci": delta.bounds, "delta_test": delta,
            "steps": None if steps is None else steps.estimate,
            "steps_ci": None if steps is None else steps.bounds, "steps_test": steps,
            "unreached": sum(math.isinf(f) for f in fractions),
            "state_bytes": runs[0]["state_bytes"]}


def verdict(row: dict) -> str:
    """The row against the baseline, from its tests alone: "clearly ..." only when the 95%
    interval excludes 1 (steps) or 0 (Δ loss); else "lead" (lower loss inside the noise) or
    "level"."""
    if row["failed"]:
        return "diverged"
    if row["steps_ci"] is not None and row["steps_ci"][1] < 1:
        return "clearly fewer steps"
    if row["delta_ci"][1] < 0:
        return "clearly lower loss"
    if row["delta_ci"][0] > 0:
        return "clearly higher loss"
    return "lead, not clear" if row["delta"] < 0 else "level"


def lr_text(tuned: dict) -> str:
    """``lr / plain lr`` (``-`` for rows run at another row's lrs)."""
    if "lr" not in tuned:
        return "-"
    plain = tuned.get("plain_lr")
    return f"{tuned['lr']:.3g}" + ("" if plain is None else f" / {plain:.3g}")


def comparison_rows(tuned: dict[str, dict], baseline: list[dict], horizon: int,
                    adamw_state: int) -> list[dict]:
    """One :func:`compare` row per tuned contender, with its state as % of AdamW's."""
    rows = []
    for label, t in tuned.items():
        row = {"optimizer": label, "lr": lr_text(t), "edge": t.get("grid_edge"),
               **compare(t["runs"], baseline, horizon)}
        row["state_pct"] = (100 * row["state_bytes"] / adamw_state
                            if row.get("state_bytes") and adamw_state else None)
        rows.append(row)
    return rows


def memory_at_equal_quality(rows: list[dict]) -> dict:
    """The smallest state among seeded rows (2+ seeds) not clearly worse than AdamW: the lower
    end of their Δ loss interval at most 0 (equal quality here means no evidence of a loss)."""
    reaching = [r for r in rows if not r["failed"] and r["seeds"] > 1 and r["delta_ci"][0] <= 0
                and r.get("state_pct") is not None]
    best = min(reaching, key=lambda r: r["state_bytes"], default=None)
    ours = [r for r in reaching if r["optimizer"].startswith("adamw_snsm")]
    best_ours = min(ours, key=lambda r: r["state_bytes"], default=None)
    return {"reaching": [r["optimizer"] for r in reaching],
            "smallest": None if best is None else (best["optimizer"], best["state_pct"]),
            "smallest_snsm": None if best_ours is None
            else (best_ours["optimizer"], best_ours["state_pct"])}


def parameter_count(preset: str, vocab: int) -> int:
    """The parameters of ``preset`` with a ``vocab``-token vocabulary (a meta-device model)."""
    from snsm_workbench.measure.models import PRESETS, LlamaSkeleton
    import torch

    with torch.device("meta"):
        model = LlamaSkeleton(replace(PRESETS[preset], vocab=vocab))
    return sum(p.numel() for p in model.parameters())


def scale_rows(scale: dict, vocab: int, steps: int) -> list[dict]:
    """Per preset and optimizer: parameters, mean final loss, steps fraction vs AdamW."""
    rows = []
    for preset, by_label in scale.items():
        base, params = by_label[BASELINE], parameter_count(preset, vocab)
        for label, runs in by_label.items():
            fraction = steps_fraction(runs, base, steps)
            rows.append({"preset": preset, "params": params,
                         "optimizer": label, "loss": statistics.fmean(finals(runs)),
                         "steps": fraction})
    return rows


def excludes_zero(interval) -> bool:
    """Whether ``interval`` (low, high) lies wholly on one side of 0."""
    low, high = interval
    return low > 0 or high < 0
