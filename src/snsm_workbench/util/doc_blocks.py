"""Tables in README.md and docs/ that report a record, copied from the record's generated report.

A block in a Markdown page reads::

    <!-- from: benchmarks/records/NAME/report.md#Heading text -->
    ...generated...
    <!-- end -->

and holds the first table under that heading of the report (which the bench writes from the
record's runs), so no number of the block is typed by hand. ``python -m
snsm_workbench.util.doc_blocks`` rewrites every block; ``--check`` lists the stale ones and exits
1 (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"(<!-- from: (?P<source>[^#\s]+)#(?P<heading>[^>]+?) -->\n)(?P<body>.*?)"
                   r"(<!-- end -->)", re.DOTALL)
PAGES = ("README.md", "docs/*.md", "benchmarks/README.md")


def section_table(report: Path, heading: str) -> str:
    """The first Markdown table under ``heading`` (any level) in ``report``; ValueError naming the
    file and heading when there is none."""
    lines = report.read_text().splitlines()
    titles = [i for i, line in enumerate(lines)
              if line.startswith("#") and line.lstrip("#").strip() == heading]
    if not titles:
        raise ValueError(f"{report}: no heading {heading!r}")
    table, started = [], False
    for line in lines[titles[0] + 1:]:
        if line.startswith("|"):
            table.append(line)
            started = True
        elif started or line.startswith("#"):
            break
    if not table:
        raise ValueError(f"{report}: no table under {heading!r}")
    return "\n".join(table) + "\n"


def render(text: str, root: Path) -> str:
    """``text`` with every block's body replaced by its source table."""
    def fill(match: re.Match) -> str:
        body = section_table(root / match["source"], match["heading"].strip())
        return f"{match.group(1)}{body}{match.group(5)}"
    return BLOCK.sub(fill, text)


def pages(root: Path) -> list[Path]:
    return sorted({path for pattern in PAGES for path in root.glob(pattern)})


def stale_pages(root: Path, write: bool = False) -> list[Path]:
    """The pages whose blocks differ from their sources (rewritten when ``write``)."""
    stale = []
    for page in pages(root):
        text = page.read_text()
        rendered = render(text, root)
        if rendered != text:
            stale.append(page)
            if write:
                page.write_text(rendered)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    parser.add_argument("--check", action="store_true",
                        help="rewrite nothing; list stale pages and exit 1 if any")
    args = parser.parse_args(argv)
    stale = stale_pages(args.root, write=not args.check)
    for page in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {page}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
