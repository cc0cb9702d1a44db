"""A configuration of the standard record rerun at another plain-group lr, paired by seed.

The standard protocol picks the plain-group lr (embedding, head, norms) at a third of the
horizon and keeps it at the full horizon. This check reruns LABEL's seeded runs exactly as the
record made them (each run's saved identity: model, data, schedule, matrix lr, seed) with only
the plain-group lr changed to PLAIN, and compares them, paired by seed, with the record's own
runs, with AdamW's and with ``torch.optim.Muon``'s (95% t intervals). It is a sensitivity check
made after seeing the record, not a retuning: the record's rows stay as the protocol chose them.
Finished runs are reused (resumable). Writes OUT/runs/seedS.json, OUT/results.json and
OUT/table.md.

    python benchmarks/scripts/plain_lr_check.py RECORD LABEL PLAIN OUT [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from snsm_workbench.bench.comparison import compare, finals
from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.report_format import fmt_delta, fmt_loss
from snsm_workbench.bench.run_one import compact, train_one
from snsm_workbench.bench.statistics import mean_sd
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.util.environment import environment
from snsm_workbench.util.tables import markdown_table


def _seeded(results: dict, label: str) -> dict:
    """LABEL's tuned record (with its seeded runs) from the record's results."""
    for stage in ("headline", "peers", "muon"):
        tuned = (results.get(stage) or {}).get(label)
        if tuned:
            return tuned
    raise SystemExit(f"{label!r}: no seeded runs in the record's headline, peers or muon stage")


def _identity(record: Path, saved: dict) -> dict:
    """What made ``saved`` (its file in the record's ``runs/``, found by its key)."""
    key = saved["key"]
    for path in (record / "runs").rglob(f"{key['label']}/*/*/seed{key['seed']}.json"):
        run = json.loads(path.read_text())
        if run["key"] == key:
            return run["identity"]
    raise SystemExit(f"{record}/runs: no run file with key {key}")


def _rerun(record: Path, saved: dict, plain: float, out: Path) -> dict:
    """The saved run again with plain-group lr ``plain`` (cached in ``out``)."""
    seed = saved["key"]["seed"]
    path = out / "runs" / f"seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    identity = _identity(record, saved)
    contender = Contender(**identity["contender"], lr=identity["config"]["lr"], grid=())
    base = TrainConfig(**identity["config"])
    work = out / "work" / f"seed{seed}"
    result = train_one(contender, base.lr, plain, base, seed, work)
    shutil.rmtree(work)
    run = {**compact(result), "key": {**saved["key"], "plain_lr": plain}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run) + "\n")
    return run


def _summary(label: str, runs: list[dict]) -> dict:
    """A configuration's name, final loss (mean, sd), seed count and state bytes."""
    mean, sd = mean_sd(finals(runs))
    return {"configuration": label, "loss": mean, "sd": sd, "seeds": len(runs), "failed": False,
            "state_bytes": runs[0]["state_bytes"]}


def _rows(name: str, runs: list[dict], against: dict[str, list[dict]], horizon: int
          ) -> list[dict]:
    """The check's own row, then one per configuration it is compared with: that
    configuration's loss and the check's Δ against it (paired by seed)."""
    return [{**_summary(name, runs), "delta_ci": None}] + [
        {**compare(runs, base, horizon), **_summary(label, base)}
        for label, base in against.items()]


def _table(rows: list[dict]) -> str:
    return markdown_table(rows, [
        ("configuration", "configuration"), ("final val loss (mean ± sd)", fmt_loss),
        ("Δ loss of the check vs it [95% CI], paired by seed",
         lambda r: "-" if r["delta_ci"] is None else fmt_delta(r))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path)
    parser.add_argument("label")
    parser.add_argument("plain", type=float)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads((args.record / "results.json").read_text())
    horizon = results["settings"]["full_steps"]
    tuned = _seeded(results, args.label)
    record_runs = [r for r in tuned["runs"] if r["key"]["seed"] in args.seeds]
    runs = [_rerun(args.record, saved, args.plain, args.out) for saved in record_runs]
    against = {f"{args.label} as recorded (plain {tuned.get('plain_lr') or tuned['lr']:g})":
               record_runs, "adamw": results["headline"]["adamw"]["runs"],
               "torch.optim.Muon (muon)": results["peers"]["muon"]["runs"]}
    name = f"{args.label} at plain {args.plain:g} (this check)"
    rows = _rows(name, runs, {label: [r for r in base if r["key"]["seed"] in args.seeds]
                              for label, base in against.items()}, horizon)
    table = _table(rows)
    by_seed = {r["key"]["seed"]: r["val_loss"][-1] for r in runs}
    (args.out / "results.json").write_text(json.dumps(
        {"label": args.label, "lr": tuned["lr"], "plain_lr": args.plain,
         "recorded_plain_lr": tuned.get("plain_lr"), "finals": by_seed,
         "rows": [{k: v for k, v in r.items() if not k.endswith("_test")} for r in rows],
         "environment": environment(("snsm", "torch"))}, indent=1, default=str) + "\n")
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
