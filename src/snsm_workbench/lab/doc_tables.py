"""The lab's tables as docs/lab.md shows them, written from a lab record, not from a rerun.

A lab record is a folder holding ``results.json`` (the list ``snsm lab ... --json`` prints)
and each experiment's ``NAME.csv``. :func:`render_tables` turns it into one Markdown file
(``tables.md``), a heading per table, from which docs/lab.md copies through doc blocks
(``snsm docs`` writes it, then the blocks):

* ``Overview``: each experiment's verdict (and its questions' verdicts) and seconds;
* ``NAME: figures``: every figure, its expected range and whether it is in it;
  ``NAME: figures of QUESTION``: the figures a question owns;
* per experiment, the views of its CSV the page discusses (:data:`VIEWS`): the
  ``subset-norm`` exponents (M per d at the frozen lr against the bound's exponents) and
  tuned M per d; the ``adagrad-variants`` perplexities per lr and seed; the
  ``high-probability`` q0.95 per T and its tail at the largest T.

Numbers are shown to 4 significant digits (:func:`~snsm_workbench.lab.report.format_cell`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Callable

from snsm_workbench.lab.report import format_cell
from snsm_workbench.lab.subset_norm import bound_terms, label
from snsm_workbench.util.tables import markdown_table

RESULTS = "results.json"
TABLES = "tables.md"
QUANTILE = "q0.95"  # the quantile whose slope in T high-probability's figures fit


def parse_cell(text: str) -> Any:
    """A CSV cell as the lab wrote it: a number, True / False, None for an empty cell, or text."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an experiment's CSV, cells parsed by :func:`parse_cell`."""
    with path.open(newline="") as handle:
        return [{key: parse_cell(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def read_record(folder: Path) -> list[dict[str, Any]]:
    """``folder/results.json``: one object per experiment; ValueError naming the file if it
    is not a list of objects with an ``experiment`` key."""
    path = folder / RESULTS
    if not path.is_file():
        raise ValueError(f"{path}: no such file (write it with snsm lab ... --json)")
    records = json.loads(path.read_text())
    if not isinstance(records, list) or not all(isinstance(r, dict) and "experiment" in r
                                                for r in records):
        raise ValueError(f"{path}: expected a JSON list of objects with an 'experiment' key")
    return records


def verdict_text(record: dict[str, Any]) -> str:
    """``holds``, or ``holds (consistency: holds, practice: reported)`` with questions."""
    questions = ", ".join(f"{q['name']}: {q['verdict']}" for q in record.get("questions", []))
    return f"{record['verdict']} ({questions})" if questions else record["verdict"]


def overview(records: list[dict[str, Any]]) -> str:
    rows = [{"experiment": f"[`{r['experiment']}`](#{r['experiment']})",
             "verdict": verdict_text(r), "seconds": f"{r['seconds']:g}"} for r in records]
    return markdown_table(rows)


def range_text(bounds: list[float | None] | None) -> str:
    """``[lo, hi]`` with -inf / inf for an open end; ``(reported)`` without a range."""
    if bounds is None:
        return "(reported)"
    lo, hi = bounds
    return (f"[{'-inf' if lo is None else format_cell(float(lo))}, "
            f"{'inf' if hi is None else format_cell(float(hi))}]")


def check_text(record: dict[str, Any], name: str) -> str:
    """``yes`` / ``**no**`` for a ranged figure, empty for a reported one."""
    if name not in record["checks"]:
        return ""
    return "yes" if record["checks"][name] else "**no**"


def figures_table(record: dict[str, Any], names: list[str] | None = None) -> str:
    """figure | measured | expected | in range, for ``names`` (default: every figure)."""
    names = list(record["figure"]) if names is None else names
    rows = [{"figure": f"`{name}`", "measured": format_cell(record["figure"][name]),
             "expected": range_text(record["expected"].get(name)),
             "in range": check_text(record, name)} for name in names]
    return markdown_table(rows)


def groups(rows: list[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    """The rows by their values of ``keys``, in the order the groups first appear."""
    found: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(tuple(row[key] for key in keys), []).append(row)
    return found


def subset_norm_consistency(record: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Per beta and method: the frozen lr, M per d, the fitted exponent, the bound's (a, c),
    the limit max(a, c) + TOL and whether the exponent is within it."""
    table = []
    for (beta, method), mine in groups(rows, "beta", "method").items():
        name = f"{label(beta)}_{method}_exponent"
        a, c = bound_terms(method, beta)
        table.append({"beta": format_cell(beta), "method": method,
                      "lr (frozen)": format_cell(mine[0]["frozen_lr"]),
                      **{f"d={r['d']:g}": format_cell(r["M_frozen"]) for r in mine},
                      "exponent": format_cell(record["figure"][name]),
                      "bound (a, c)": f"{format_cell(a)}, {format_cell(c)}",
                      "limit": format_cell(record["expected"][name][1]),
                      "in range": check_text(record, name)})
    return markdown_table(table)


def subset_norm_practice(record: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Per beta and d: each method's tuned M (its lr, ``*`` at an end of the grid) and the
    subset methods' M over the better of AdaGrad and AdaGrad-Norm."""
    table = []
    for (beta, d), mine in groups(rows, "beta", "d").items():
        row = {"beta": format_cell(beta), "d": format_cell(d)}
        for r in mine:
            edge = "*" if r["tuned_at_edge"] else ""
            row[f"{r['method']} M (lr)"] = (f"{format_cell(r['M_tuned'])} "
                                            f"({format_cell(r['tuned_lr'])}{edge})")
        for r in mine:
            if r["over_best"] is not None:
                row[f"{r['method']} / best"] = format_cell(r["over_best"])
        table.append(row)
    return markdown_table(table)


def adagrad_variants_perplexities(record: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Per variant: the tuning seed's perplexity at each lr, the chosen lr, the measuring
    seeds' perplexities and exp(mean final validation loss) over them."""
    table = []
    for (variant,), mine in groups(rows, "variant").items():
        tune = [r for r in mine if r["role"] == "tune"]
        measure = [r for r in mine if r["role"] == "measure"]
        seeds = ", ".join(format_cell(r["seed"]) for r in measure)
        table.append({"variant": variant,
                      **{f"ppl lr={r['lr']:g}": format_cell(r["val_ppl"]) for r in tune},
                      "lr": format_cell(measure[0]["lr"]),
                      f"ppl seeds {seeds}": ", ".join(format_cell(r["val_ppl"]) for r in measure),
                      "ppl (geo. mean)": format_cell(math.exp(
                          sum(r["val_loss"] for r in measure) / len(measure)))})
    return markdown_table(table)


def high_probability_quantile(record: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Per method and sigma: the :data:`QUANTILE` at each T."""
    table = [{"method": method, "sigma": format_cell(sigma),
              **{f"{QUANTILE} T={r['T']:g}": format_cell(r[QUANTILE]) for r in mine}}
             for (method, sigma), mine in groups(rows, "method", "sigma").items()]
    return markdown_table(table)


def high_probability_tail(record: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Every quantile of each method at the largest sigma and the largest T."""
    sigma, steps = max(r["sigma"] for r in rows), max(r["T"] for r in rows)
    title = f"method (sigma = {sigma:g}, T = {steps:g})"
    quantiles = [key for key in rows[0] if key.startswith("q")]
    table = [{title: r["method"], **{q: format_cell(r[q]) for q in quantiles}}
             for r in rows if r["sigma"] == sigma and r["T"] == steps]
    return markdown_table(table)


View = Callable[[dict[str, Any], list[dict[str, Any]]], str]
# experiment -> {title: view of its CSV}; the heading is "NAME: title"
VIEWS: dict[str, dict[str, View]] = {
    "subset-norm": {"consistency": subset_norm_consistency, "practice": subset_norm_practice},
    "adagrad-variants": {"perplexities": adagrad_variants_perplexities},
    "high-probability": {QUANTILE: high_probability_quantile, "tail": high_probability_tail},
}


def experiment_sections(folder: Path, record: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, table) for one experiment: its figures, per question, and its views."""
    name = record["experiment"]
    sections = [(f"{name}: figures", figures_table(record))]
    sections += [(f"{name}: figures of {q['name']}", figures_table(record, q["figures"]))
                 for q in record.get("questions", [])]
    views = VIEWS.get(name, {})
    if views:
        rows = read_rows(folder / f"{name}.csv")
        sections += [(f"{name}: {title}", view(record, rows)) for title, view in views.items()]
    return sections


def render_tables(folder: Path) -> str:
    """The text of ``folder/tables.md`` from ``folder``'s results.json and CSVs."""
    records = read_record(folder)
    sections = [("Overview", overview(records))]
    for record in records:
        sections += experiment_sections(folder, record)
    head = (f"# Lab tables\n\nWritten by `snsm docs` from `{RESULTS}` and the experiments' CSVs "
            "in this folder (snsm_workbench.lab.doc_tables); docs/lab.md copies them. Do not "
            "edit by hand.\n")
    return head + "".join(f"\n## {title}\n\n{table}\n" for title, table in sections)


def stale_tables(folder: Path, write: bool = False) -> list[Path]:
    """``[folder/tables.md]`` when it differs from :func:`render_tables` (rewritten when
    ``write``), else ``[]``."""
    path = folder / TABLES
    text = render_tables(folder)
    if path.is_file() and path.read_text() == text:
        return []
    if write:
        path.write_text(text)
    return [path]
