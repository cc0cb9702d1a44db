"""Tables in README.md and docs/ that report a record, copied from the record's files.

A block in a Markdown page reads::

    <!-- from: benchmarks/records/NAME/FILE#Heading text -->
    ...generated...
    <!-- end -->

and holds, by the source's kind:

* ``FILE.md#Heading``: the first Markdown table under that heading (any level) of a Markdown
  file of the record (a report the bench writes from the record's runs, or the lab's
  ``docs/lab/tables.md``); ``FILE.md`` alone: its first table (a ``table.md``);
* ``FILE#$ command``: in a text output made of ``$ command`` lines each followed by that
  command's output, the output of that command, in a fenced block;
* ``FILE.csv``: the file as a Markdown table, numbers to 4 significant digits (integers whole);
* ``FILE`` alone: the whole text file, in a fenced block;

so no number of the block is typed by hand. :func:`stale_pages` finds the stale pages and, when
asked, rewrites them; ``snsm docs`` (``--check``: list them, exit 1) is its command line, and a
test fails when a block is stale.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

BLOCK = re.compile(r"(<!-- from: (?P<source>[^#\s]+)(?:#(?P<heading>[^>]+?))? -->\n)(?P<body>.*?)"
                   r"(<!-- end -->)", re.DOTALL)
COMMAND = "$ "
PAGES = ("README.md", "docs/*.md", "benchmarks/README.md")


def section_table(report: Path, heading: str | None) -> str:
    """The first Markdown table under ``heading`` (any level; None: from the top) in ``report``;
    ValueError naming the file and heading when there is none."""
    lines = report.read_text().splitlines()
    titles = [i for i, line in enumerate(lines)
              if line.startswith("#") and line.lstrip("#").strip() == heading]
    if heading is not None and not titles:
        raise ValueError(f"{report}: no heading {heading!r}")
    table, started = [], False
    for line in lines[titles[0] + 1 if titles else 0:]:
        if line.startswith("|"):
            table.append(line)
            started = True
        elif started or line.startswith("#"):
            break
    if not table:
        raise ValueError(f"{report}: no table under {heading!r}")
    return "\n".join(table) + "\n"


def command_output(output: Path, command: str) -> str:
    """The lines after the line ``command`` (which starts with ``$ ``) of ``output``, up to the
    next command line, trailing blank lines dropped; ValueError naming the file when absent."""
    lines = output.read_text().splitlines()
    if command not in lines:
        raise ValueError(f"{output}: no line {command!r}")
    body = []
    for line in lines[lines.index(command) + 1:]:
        if line.startswith(COMMAND):
            break
        body.append(line)
    return "\n".join(body).rstrip("\n") + "\n"


def csv_cell(text: str) -> str:
    """A CSV value as the lab's tables show it: 4 significant digits, integers whole, text and
    empty cells as they are."""
    try:
        value = float(text)
    except ValueError:
        return text
    if value != value or abs(value) == float("inf"):
        return text
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def csv_table(path: Path) -> str:
    """The CSV file ``path`` (a header row, then rows) as a Markdown table."""
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(csv_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fenced(text: str) -> str:
    return f"```\n{text.rstrip(chr(10))}\n```\n"


def block_body(source: Path, heading: str | None) -> str:
    """What a block copies from ``source`` (see the module docstring)."""
    if not source.is_file():
        raise ValueError(f"{source}: no such file")
    if source.suffix == ".md":
        return section_table(source, heading)
    if source.suffix == ".csv" and heading is None:
        return csv_table(source)
    if heading is None:
        return fenced(source.read_text())
    if heading.startswith(COMMAND):
        return fenced(command_output(source, heading))
    raise ValueError(f"{source}: a text output's block names a '$ command' line or nothing, "
                     f"not {heading!r}")


def render(text: str, root: Path) -> str:
    """``text`` with every block's body replaced by what its source gives."""
    def fill(match: re.Match) -> str:
        heading = match["heading"].strip() if match["heading"] else None
        body = block_body(root / match["source"], heading)
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

