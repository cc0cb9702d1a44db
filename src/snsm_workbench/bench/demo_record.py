"""What ``snsm demo`` takes from the standard record (benchmarks/records/2026-11-29-standard):
each contender's tuned lrs, its mean validation curve over the record's seeds, and the
sentences that say what the record concludes and how far a short demo is from it.

The record's configuration of each demo contender (:data:`RECORD_SOURCES`): AdamW's and
AdamSNSM's headline entries; the lean level's lrs are AdamSNSM's (as the record's lean levels
take their base's) and its runs the lean stage's ``adamw_snsm_8bit_pure_bf16``; snsm's Muon
takes ``torch.optim.Muon``'s (the peers stage's ``muon``: the record's note shows ours trains
the same curves bit for bit).

The demo reads the record's digest (:func:`build_digest`: the few keys above, in the shape of
the record's ``results.json``), shipped as package data (``standard_digest.json``) so that an
installed wheel, which has no records, runs the demo. ``snsm docs`` rewrites it from the record
(:func:`stale_digest`); a test checks it equals the one built from the committed record.
"""

from __future__ import annotations

import json
import statistics
from importlib import resources
from pathlib import Path

from snsm_workbench.bench.statistics import mean_curve
from snsm_workbench.util.paths import repository_root

# The standard record's folder and its digest (package data), under the repository root.
STANDARD_RECORD = Path("benchmarks/records/2026-11-29-standard")
DIGEST = Path("src/snsm_workbench/bench/standard_digest.json")
# Each demo contender: (stage, label) of its lrs, and of its runs, in the record's results.json.
RECORD_SOURCES = {"adamw": ("headline", "adamw"), "adamw_snsm": ("headline", "adamw_snsm"),
                  "adamw_snsm_lean": ("headline", "adamw_snsm"), "muon": ("peers", "muon")}
RECORD_RUNS = {**RECORD_SOURCES, "adamw_snsm_lean": ("lean", "adamw_snsm_8bit_pure_bf16")}
# The labels whose optimizer state record_sentence compares (AdamW's is the 100%).
STATE_LABELS = ("adamw", "adamw_sn", "adamw_snsm", "adamw_snsm_8bit_pure_bf16", "muon")


def _link(record_dir: Path) -> str:
    """``record_dir`` as the demo shows it: relative to the repository root when under it."""
    try:
        return Path(record_dir).resolve().relative_to(repository_root("a record link")).as_posix()
    except (FileNotFoundError, ValueError):
        return Path(record_dir).as_posix()


def build_digest(results: dict, record_dir: Path = STANDARD_RECORD) -> dict:
    """What the demo takes from a record's ``results.json`` (``results``), in its shape: the
    record's folder (``record``), ``settings``' seeds and full_steps, the ``state`` bytes of
    :data:`STATE_LABELS`, the lr and plain_lr of :data:`RECORD_SOURCES` and the validation
    curves (steps, val_loss of each seed) of :data:`RECORD_RUNS`. Nothing else of the record
    changes it."""
    digest: dict = {"record": _link(record_dir),
                    "settings": {key: results["settings"][key] for key in ("seeds", "full_steps")},
                    "state": {label: results["state"][label] for label in STATE_LABELS}}
    for stage, source in RECORD_SOURCES.values():
        entry = results[stage][source]
        digest.setdefault(stage, {})[source] = {"lr": entry["lr"], "plain_lr": entry["plain_lr"]}
    for label, (stage, source) in RECORD_RUNS.items():
        runs = [{"steps": run["steps"], "val_loss": run["val_loss"]}
                for run in record_runs(results, label)]
        place = digest.setdefault(stage, {})
        if isinstance(results[stage][source], list):  # a lean level holds its runs
            place[source] = runs
        else:
            place[source] = {**place.get(source, {}), "runs": runs}
    return digest


def digest_text(digest: dict) -> str:
    """The digest as its file holds it."""
    return json.dumps(digest, indent=1) + "\n"


def stale_digest(root: Path, write: bool) -> list[Path]:
    """``[root/DIGEST]`` when it differs from the digest of ``root``'s standard record
    (rewritten when ``write``); ``[]`` when it does not, or when ``root`` has no such record."""
    results = Path(root) / STANDARD_RECORD / "results.json"
    if not results.is_file():
        return []
    text = digest_text(build_digest(json.loads(results.read_text())))
    path = Path(root) / DIGEST
    if path.is_file() and path.read_text() == text:
        return []
    if write:
        path.write_text(text)
    return [path]


def load_record(record_dir: Path = STANDARD_RECORD) -> dict:
    """The digest (:func:`build_digest`) of the record in ``record_dir``: for the standard
    record the packaged one (no checkout needed), else one built from its ``results.json``."""
    if Path(record_dir) == STANDARD_RECORD:
        return json.loads(resources.files(__package__).joinpath(DIGEST.name).read_text())
    results = json.loads((Path(record_dir) / "results.json").read_text())
    return build_digest(results, Path(record_dir))


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


def record_sentence(record: dict, record_dir: Path | None = None) -> str:
    """What the standard record concludes, in one sentence, its numbers from the record (a
    digest); its report is in ``record_dir``, by default the digest's ``record``."""
    state = record["state"]
    share = {label: 100 * state[label] / state["adamw"]
             for label in ("adamw_sn", "adamw_snsm", "adamw_snsm_8bit_pure_bf16", "muon")}
    settings = record["settings"]
    where = Path(record["record"] if record_dir is None else _link(record_dir))
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
