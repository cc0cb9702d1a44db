"""Rows of dicts as aligned text or as a markdown table.

A column is ``(title, key)`` or ``(title, row -> value)``; without columns, every
key of the first row is a column titled by its key. ``cell`` turns a value into
its text (default ``str``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

Column = tuple[str, "str | Callable[[dict], Any]"]


def _grid(rows: Sequence[dict], columns: Sequence[Column] | None,
          cell: Callable[[Any], str]) -> tuple[list[str], list[list[str]]]:
    columns = columns if columns is not None else [(key, key) for key in rows[0]]
    header = [title for title, _ in columns]
    body = [[cell(get(row) if callable(get) else row.get(get, "")) for _, get in columns]
            for row in rows]
    return header, body


def text_table(rows: Sequence[dict], columns: Sequence[Column] | None = None,
               cell: Callable[[Any], str] = str) -> str:
    """Left-aligned columns under a dashed rule; ``"(no rows)"`` for no rows."""
    if not rows:
        return "(no rows)"
    header, body = _grid(rows, columns, cell)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip()
                     for line in [header, ["-" * w for w in widths], *body])


def markdown_table(rows: Sequence[dict], columns: Sequence[Column] | None = None,
                   cell: Callable[[Any], str] = str) -> str:
    """A GitHub markdown table."""
    if not rows:
        return "(no rows)"
    header, body = _grid(rows, columns, cell)
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(line) + " |" for line in body)])
