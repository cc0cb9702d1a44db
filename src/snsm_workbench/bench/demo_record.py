"""What ``snsm demo`` takes from the standard record (benchmarks/records/2026-11-29-standard):
each contender's tuned lrs, its mean validation curve over the record's seeds, and the
sentences that say what the record concludes and how far a short demo is from it.

The record's configuration of each demo contender (:data:`RECORD_SOURCES`): AdamW's and
AdamSNSM's headline entries; the lean level's lrs are AdamSNSM's (as the record's lean levels
take their base's) and its runs the lean stage's ``adamw_snsm_8bit_pure_bf16``; snsm's Muon
takes ``torch.optim.Muon``'s (the peers stage's ``muon``: the record's note shows ours trains
the same curves bit for bit).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from snsm_workbench.bench.statistics import mean_curve
from snsm_workbench.bench.suite_files import SUITES_DIR

STANDARD_RECORD = SUITES_DIR.parent / "records" / "2026-11-29-standard"
# Each demo contender: (stage, label) of its lrs, and of its runs, in the record's results.json.
RECORD_SOURCES = {"adamw": ("headline", "adamw"), "adamw_snsm": ("headline", "adamw_snsm"),
                  "adamw_snsm_lean": ("headline", "adamw_snsm"), "muon": ("peers", "muon")}
RECORD_RUNS = {**RECORD_SOURCES, "adamw_snsm_lean": ("lean", "adamw_snsm_8bit_pure_bf16")}


def load_record(record_dir: Path = STANDARD_RECORD) -> dict:
    """The standard record's ``results.json``."""
    return json.loads((Path(record_dir) / "results.json").read_text())


def record_lrs(record: dict) -> dict[str, tuple[float, float | None]]:
    """Each demo contender's (matrix lr, plain-group lr) as the standard record tuned them."""
    return {label: (record[stage][source]["lr"], record[stage][source]["plain_lr"])
            for label, (stage, source) in RECORD_SOURCES.items()}


def record_runs(record: dict, label: str) -> list[dict]:
    """The record's seeded runs of demo contender ``label`` (a lean stage holds its runs)."""
    stage, source = RECORD_RUNS[label]
    value = record[stage][source]
    return value if isinstance(value, list) else value["runs"]


def record_curve(record: dict, label: str) -> tuple[list[int], list[float]]:
    """(steps, mean validation loss over the record's seeds) of demo contender ``label``."""
    return mean_curve([dict(zip(run["steps"], run["val_loss"]))
                       for run in record_runs(record, label)])


def record_final(record: dict, label: str) -> float:
    """The mean final validation loss over the record's seeds of demo contender ``label``."""
    return record_curve(record, label)[1][-1]


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


def spread_sentence(record: dict, steps: int) -> str:
    """How far this demo is from the record's evidence: its seeds and steps, and the spread of
    AdamW's final loss over the record's seeds (sample sd)."""
    finals = [run["val_loss"][-1] for run in record["headline"]["adamw"]["runs"]]
    settings = record["settings"]
    return (f"This demo is one seed of {steps} steps (the record: {settings['seeds']} seeds of "
            f"{settings['full_steps']}); AdamW's final loss there varies by "
            f"{statistics.stdev(finals):.3f} (sd) from seed to seed, so a smaller gap here is "
            f"not evidence either way.")


def muon_sentence(record: dict) -> str:
    """When torch.optim.Muon's mean loss (over the record's seeds) goes below AdamW's for good."""
    steps, adamw = record_curve(record, "adamw")
    muon = dict(zip(*record_curve(record, "muon")))
    pairs = [(step, loss, muon[step]) for step, loss in zip(steps, adamw) if step in muon]
    ahead = next((step for i, (step, _, _) in enumerate(pairs)
                  if all(m <= a for _, a, m in pairs[i:])), None)
    where = f"from step {ahead} of {steps[-1]} on" if ahead is not None else "never"
    return (f"In the record, Muon's mean loss is below AdamW's only {where}: a short run "
            f"does not show its lead (the figure's middle panel shows the record's curves).")
