"""heavy-tails: quantiles widen with theta; selection meets delta where one iterate does not
(a selection that picked at random would fail as often as one iterate, above delta)."""

from __future__ import annotations

from snsm_workbench.lab import heavy_tails as exp


def test_quick_widening_and_selection(figure):
    fig = figure("heavy-tails")
    assert fig["spread_widening"] >= 1.2
    assert fig["selection_failure_max"] <= exp.DELTA
    # A single random iterate fails more often than delta: selection is doing the work.
    assert fig["single_failure_min"] > exp.DELTA
