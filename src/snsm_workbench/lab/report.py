"""The result record of an experiment, its verdict, and its table / CSV / PNG outputs.

The verdict is mechanical: ``"holds"`` when every figure named in ``expected``
is finite and inside its closed range (``None`` = unbounded), ``"fails"`` otherwise.
Ranges are fixed in each experiment's module from the theory, not from the runs.

An experiment may split its figures into :class:`Question`s, each with its own
verdict by the same rule over the ranged figures it owns, or ``"reported"`` when it
owns none (a finding, not a claim). The experiment's verdict stays the one over
every range.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from snsm_workbench.util.tables import text_table

Range = tuple[float | None, float | None]


def in_range(value: float, bounds: Range) -> bool:
    lo, hi = bounds
    if value is None or not math.isfinite(value):
        return False
    return (lo is None or value >= lo) and (hi is None or value <= hi)


REPORTED = "reported"  # the verdict of a question without ranges: figures only


@dataclass(frozen=True)
class Question:
    """One question an experiment answers: its name, its wording and the figures it owns."""

    name: str
    text: str
    figures: tuple[str, ...]


@dataclass
class Result:
    """One experiment's outcome: claim, measured figure(s), expected ranges, table."""

    experiment: str
    claim: str
    figure: dict[str, float]
    expected: dict[str, Range]
    rows: list[dict[str, Any]]
    notes: str = ""
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    questions: list[Question] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = set(self.expected) - set(self.figure)
        if missing:
            raise ValueError(f"{self.experiment}: expected ranges for unmeasured figures "
                             f"{sorted(missing)}")
        owned = [name for q in self.questions for name in q.figures]
        unknown = set(owned) - set(self.figure)
        if unknown or len(owned) != len(set(owned)):
            raise ValueError(f"{self.experiment}: questions must own measured figures, each "
                             f"once (unknown: {sorted(unknown)})")

    @property
    def checks(self) -> dict[str, bool]:
        return {name: in_range(self.figure[name], bounds) for name, bounds in self.expected.items()}

    @property
    def verdict(self) -> str:
        return "holds" if all(self.checks.values()) else "fails"

    def question_verdict(self, question: Question) -> str:
        """holds / fails over the ranged figures ``question`` owns; "reported" if none."""
        checks = [self.checks[name] for name in question.figures if name in self.expected]
        if not checks:
            return REPORTED
        return "holds" if all(checks) else "fails"

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "claim": self.claim,
                "figure": {k: _round(v) for k, v in self.figure.items()},
                "expected": {k: list(v) for k, v in self.expected.items()},
                "verdict": self.verdict, "checks": self.checks, "notes": self.notes,
                "files": self.files, "seconds": round(self.seconds, 2),
                **({"questions": [{"name": q.name, "question": q.text,
                                   "verdict": self.question_verdict(q),
                                   "figures": list(q.figures)} for q in self.questions]}
                   if self.questions else {})}

    def summary(self) -> str:
        """Claim, table, figure against its ranges, verdict: the text the CLI prints."""
        lines = [f"== {self.experiment} ==", f"claim: {self.claim}", text_table(self.rows, cell=format_cell), ""]
        for name, value in self.figure.items():
            bounds = self.expected.get(name)
            where = "" if bounds is None else (
                f"  expected [{_bound(bounds[0], '-inf')}, {_bound(bounds[1], 'inf')}] "
                f"{'ok' if self.checks[name] else 'OUT'}")
            lines.append(f"  {name} = {_round(value)}{where}")
        for question in self.questions:
            lines.append(f"question {question.name}: {question.text} -> "
                         f"{self.question_verdict(question)}")
        if self.notes:
            lines.append(f"note: {self.notes}")
        lines.append(f"verdict: {self.verdict}  ({self.seconds:.1f} s; files: "
                     f"{', '.join(self.files)})")
        return "\n".join(lines)


def _bound(value: float | None, unbounded: str) -> str:
    return unbounded if value is None else f"{value:.4g}"


def _round(value: Any) -> Any:
    """Floats to 4 significant digits (integral ones as ints); inf / NaN as strings."""
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if value.is_integer() and abs(value) < 1e15 else float(f"{value:.4g}")
    if isinstance(value, float):
        return str(value)
    return value


def format_cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits (see :func:`_round`)."""
    return str(_round(value))


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def new_figure(ncols: int = 1, width: float = 5.0, height: float = 4.0):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height))
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return figure, axes


def save_figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def write_outputs(result: Result, out: Path, figure) -> Result:
    """CSV of the rows and PNG of ``figure`` as ``out/<experiment>.{csv,png}``."""
    csv_path = write_csv(out / f"{result.experiment}.csv", result.rows)
    png_path = save_figure(figure, out / f"{result.experiment}.png")
    result.files = [str(csv_path), str(png_path)]
    return result
