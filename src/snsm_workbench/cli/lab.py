"""``snsm lab NAME|all [--quick] [--out DIR] [--json]``: run theory-lab experiments."""

from __future__ import annotations

import argparse
import json

from snsm_workbench.cli import add_command
from snsm_workbench.lab.registry import EXPERIMENTS, run
from snsm_workbench.util.paths import check_writable_folder


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``lab`` on the ``snsm`` command's subparsers."""
    lab = add_command(
        subparsers, "lab",
        description="Each experiment prints its claim, a table, the measured figure against "
                    "ranges fixed from the theory, and a verdict (holds / fails); it writes "
                    "NAME.csv and NAME.png under --out. Experiments illustrate the theory; "
                    "they do not prove bounds.")
    lab.add_argument("name", choices=[*EXPERIMENTS, "all"], metavar="NAME|all",
                     help=f"one of: {', '.join(EXPERIMENTS)}, or all")
    lab.add_argument("--quick", action="store_true", help="the small version (seconds each)")
    lab.add_argument("--out", default="runs/lab", help="folder for the CSVs and PNGs")
    lab.add_argument("--json", action="store_true",
                     help="print a JSON list, one object per experiment")
    lab.set_defaults(run=run_command)
    return lab


def run_command(args: argparse.Namespace) -> int:
    check_writable_folder("--out", args.out)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    results = []
    for name in names:
        result = run(name, quick=args.quick, out=args.out)
        results.append(result)
        if not args.json:
            print(result.summary(), end="\n\n", flush=True)
    if args.json:
        print(json.dumps([result.to_json() for result in results], indent=2))
    else:
        verdicts = ", ".join(f"{r.experiment}: {r.verdict}" for r in results)
        print(f"{len(results)} experiment(s) in {sum(r.seconds for r in results):.1f} s "
              f"-> {verdicts}")
    return 0
