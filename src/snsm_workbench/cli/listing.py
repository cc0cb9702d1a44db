"""``snsm list``: the registry's optimizers, their learning rates and what each one is."""

from __future__ import annotations

import argparse
import json
import textwrap

from snsm.optim.registry import OPTIMIZERS
from snsm_workbench.cli import add_command
from snsm_workbench.util.tables import text_table

WIDTH = 100  # the listing fits a 100-column terminal
COLUMNS = [("name", "name"), ("class", "class"), ("harness lr", "harness_lr"),
           ("paper lr", "paper_lr")]
LR_NOTE = ("harness lr: the peak lr of `snsm train` on the tiny model; paper lr: the paper's "
           "LLaMA-60M lr (-: the paper gives none)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = add_command(subparsers, "list")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list, one object per optimizer")
    parser.set_defaults(run=run)
    return parser


def plain(text: str) -> str:
    """``text`` without reStructuredText's double backticks."""
    return text.replace("``", "")


def listing_rows() -> list[dict]:
    """One row per registry entry: name, class, lrs and the class's one-line summary."""
    return [{"name": name, "class": spec.cls.__name__, "harness_lr": spec.harness_lr,
             "paper_lr": spec.paper_lr, "summary": plain(spec.summary)}
            for name, spec in OPTIMIZERS.items()]


def _cell(value) -> str:
    """An lr as ``%g`` (``-`` for none), anything else as ``str``."""
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def listing_text(rows: list[dict], width: int = WIDTH) -> str:
    """The rows' columns, each followed by its summary wrapped to fit ``width`` columns."""
    table = text_table(rows, COLUMNS, cell=_cell).splitlines()
    indent = max(len(line) for line in table) + 2
    lines = [table[0].ljust(indent) + "summary", table[1].ljust(indent) + "-" * 7]
    for line, row in zip(table[2:], rows):
        wrapped = textwrap.wrap(row["summary"], width - indent, break_on_hyphens=False) or [""]
        lines.append(line.ljust(indent) + wrapped[0])
        lines.extend(" " * indent + more for more in wrapped[1:])
    return "\n".join([*lines, "", *textwrap.wrap(LR_NOTE, width)])


def run(args: argparse.Namespace) -> int:
    rows = listing_rows()
    print(json.dumps(rows, indent=2) if args.json else listing_text(rows))
    return 0
