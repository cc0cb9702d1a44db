"""subspace-momentum: between SGD and momentum, closing the gap with rank; memory order."""

from __future__ import annotations


def test_quick_gap_and_safe_step(quick_results, figure):
    fig = figure("subspace-momentum")
    assert fig["gap_closed_min"] >= -0.25 and fig["gap_closed_max"] <= 1.25
    assert 0.75 <= fig["gap_closed_full_rank"] <= 1.25
    assert fig["full_minus_rank1"] >= 0.25
    assert 0 < fig["safe_lr_worst_ratio"] <= 2.0


def test_random_row_subspace_misses_the_stiff_columns_and_memory_orders(quick_results):
    rows = {row["optimizer"]: row for row in _rows(quick_results)}
    # Uniform row indices cannot hold column-structured stiffness: near SGD, far from momentum.
    assert float(rows["sm-uniform-r8"]["gap_closed"]) < 0.5
    bytes_ = {name: int(row["state_bytes"]) for name, row in rows.items()}
    assert bytes_["sgd"] < bytes_["sm-svd-r1"] < bytes_["sm-svd-r4"] < bytes_["momentum"]


def _rows(quick_results):
    import csv
    from pathlib import Path

    csv_path = Path(quick_results["subspace-momentum"]["files"][0])
    with open(csv_path) as handle:
        return list(csv.DictReader(handle))
