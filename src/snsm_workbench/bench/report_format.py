"""Cell formats of the staged suite's report (:mod:`snsm_workbench.bench.staged_report`): a
comparison row of :func:`snsm_workbench.bench.comparison.compare` as text."""

from __future__ import annotations

import math


def fmt_ci(ci, spec=".3f") -> str:
    """``[low, high]`` (``∞`` for an infinite end)."""
    lo, hi = ci
    return "[" + ", ".join("∞" if math.isinf(v) else format(v, spec) for v in (lo, hi)) + "]"


def fmt_loss(row: dict) -> str:
    """Mean ± sd; one seed has no sd."""
    if row["failed"]:
        return "diverged"
    if row["seeds"] < 2:
        return f"{row['loss']:.4f} (one seed)"
    return f"{row['loss']:.4f} ± {row['sd']:.4f}"


def fmt_delta(row: dict) -> str:
    """Δ loss [95% CI]."""
    return "-" if row["failed"] else f"{row['delta']:+.4f} {fmt_ci(row['delta_ci'], '+.4f')}"


def fmt_steps(row: dict) -> str:
    """Geometric mean over seed pairs [t interval]; seeds that never reached are counted."""
    test = None if row["failed"] else row["steps_test"]
    if test is None:
        return "-"
    if math.isinf(test.estimate):
        return f"not reached by {row['unreached']} of {row['seeds']} seeds"
    if test.design == "none":
        return f"{test.estimate:.2f} (one seed)"
    return f"{test.estimate:.2f} {fmt_ci(test.bounds, '.2f')}"
