"""``snsm docs [--check] [--root DIR]``: rewrite the tables of README.md and docs/ generated
from records, and the demo's digest of the standard record.

The digest (``src/snsm_workbench/bench/standard_digest.json``, package data) from the standard
record's ``results.json`` (:func:`snsm_workbench.bench.demo_record.stale_digest`); the lab's
``docs/lab/tables.md`` from its record (``results.json`` and the CSVs,
:mod:`snsm_workbench.lab.doc_tables`), then every doc block of the pages from its source
(:mod:`snsm_workbench.util.doc_blocks`). ``--check`` rewrites nothing, lists what is stale and
exits 1 if anything is (a stale ``tables.md`` alone: the pages copy from it, so they are
checked once it is rewritten).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snsm_workbench.bench.demo_record import stale_digest
from snsm_workbench.cli import add_command
from snsm_workbench.lab.doc_tables import RESULTS, stale_tables
from snsm_workbench.util.doc_blocks import stale_pages

LAB_RECORD = Path("docs/lab")  # the lab's record, under the repository root
STALE = 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``docs`` on the ``snsm`` command's subparsers."""
    parser = add_command(
        subparsers, "docs",
        description="Writes docs/lab/tables.md from the lab's record (docs/lab/results.json "
                    "and the CSVs), then copies every table block of README.md and docs/ "
                    "from its source: no number in them is typed by hand. Also writes the "
                    "demo's digest of the standard record (package data).")
    parser.add_argument("--check", action="store_true",
                        help="rewrite nothing; list the stale files and exit 1 if any")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the repository root (default: the current folder)")
    parser.set_defaults(run=run)
    return parser


def stale_lab_tables(root: Path, write: bool) -> list[Path]:
    """``[docs/lab/tables.md]`` when it differs from the lab's record (rewritten when
    ``write``); ``[]`` when it does not, or when ``root`` has no lab record."""
    if not root.is_dir():
        raise ValueError(f"--root {root}: not a folder")
    lab = root / LAB_RECORD
    return stale_tables(lab, write=write) if (lab / RESULTS).is_file() else []


def run(args: argparse.Namespace) -> int:
    tables = stale_lab_tables(args.root, write=not args.check)
    digest = stale_digest(args.root, write=not args.check)
    if args.check and tables:  # the pages copy from the lab's tables: they wait for them
        for path in digest:
            print(f"stale: {path}")
        print(f"stale: {tables[0]} (the pages are checked once it is rewritten: snsm docs)")
        return STALE
    stale = tables + digest + stale_pages(args.root, write=not args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {path}")
    if not stale:
        print("every generated table is up to date")
    return STALE if args.check and stale else 0
