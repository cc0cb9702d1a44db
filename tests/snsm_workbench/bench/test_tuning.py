"""The tuning protocol: grids extended past an edge until the best point is inside."""

import math

from snsm_workbench.bench.tuning import best_of, neighbours, search


def valley(best_lr):
    """A loss that is lowest at ``best_lr`` (quadratic in log lr), counting its calls."""
    calls = []

    def score(values):
        values = list(values)
        calls.extend(values)
        return {v: (math.log(v) - math.log(best_lr)) ** 2 for v in values}
    return score, calls


def test_best_of_flags_the_edge_the_best_point_sits_on():
    assert best_of({1: 3.0, 2: 1.0, 4: 2.0}).edge is None
    assert best_of({1: 0.5, 2: 1.0, 4: 2.0}).edge == "low"
    assert best_of({1: 3.0, 2: 2.0, 4: 1.0}) == best_of({4: 1.0, 1: 3.0, 2: 2.0})
    assert best_of({1: 1.0, 2: 1.0, 4: 2.0}).value == 1  # ties: the smaller lr
    assert best_of({1: math.inf, 2: math.inf}).edge == "low"  # all diverged: go lower


def test_search_extends_past_the_edge_until_the_best_point_is_interior():
    score, calls = valley(best_lr=0.05)
    scores, chosen = search([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2], score, step=2.0,
                            max_extensions=3)
    assert chosen.edge is None and chosen.value == 0.064 == max(scores) / 2
    assert sorted(calls) == sorted(scores) and len(scores) == 5 + 3  # each point run once


def test_search_stops_after_max_extensions_and_says_the_best_is_still_on_the_edge():
    score, _ = valley(best_lr=100.0)
    scores, chosen = search([1.0, 2.0, 4.0], score, step=2.0, max_extensions=2)
    assert len(scores) == 5 and chosen.value == 16.0 and chosen.edge == "high"


def test_neighbours_are_the_grid_points_around_the_value():
    assert neighbours([4, 1, 2, 8], 2) == [1, 2, 4]
    assert neighbours([1, 2, 4], 1) == [1, 2]
