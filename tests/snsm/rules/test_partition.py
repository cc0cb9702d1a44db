import logging

import pytest
import torch

from snsm.rules.partition import Partition, largest_divisor_at_most, resolve_partition, sum_squares


@pytest.mark.parametrize("shape,rule,view,state", [
    ((8, 3), "heuristic", (8, 3), (8, 1)),
    ((3, 8), "heuristic", (3, 8), (1, 8)),
    ((4, 4), "heuristic", (4, 4), (4, 1)),
    ((4, 2, 3), "heuristic", (4, 6), (1, 6)),
    ((7,), "heuristic", (7,), (7,)),
    ((), "heuristic", (), ()),
    ((6, 4), 6, (4, 6), (4, 1)),
    ((6, 4), 5, (6, 4), (6, 1)),        # 5 does not divide 24: the largest divisor <= 5 is 4
    ((100,), "sqrt", (10, 10), (10, 1)),
    ((6, 4), "tensor", (24,), (1,)),
    ((10,), "tensor", (10,), (1,)),
    ((6, 4), 1, (6, 4), (6, 4)),
    ((0, 5), "heuristic", (0, 5), (0, 5)),
    ((0,), "tensor", (0,), (0,)),
    ((1, 1), "sqrt", (1, 1), (1, 1)),
])
def test_partition_rules(shape, rule, view, state):
    partition = resolve_partition(shape, rule)
    assert partition.view == view
    assert partition.state_shape == state


def test_per_coordinate_has_no_reduced_dims():
    assert resolve_partition((6, 4), 1).per_coordinate
    assert resolve_partition((5,), "heuristic").per_coordinate
    assert not resolve_partition((6, 4), "heuristic").per_coordinate


@pytest.mark.parametrize("numel,k,expected", [(24, 5, 4), (24, 24, 24), (24, 100, 24), (13, 4, 1),
                                              (1, 3, 1), (36, 6, 6), (1000, 31, 25)])
def test_largest_divisor_at_most(numel, k, expected):
    assert largest_divisor_at_most(numel, k) == expected


def test_prime_numel_is_not_silently_per_coordinate(caplog):
    resolve_partition.cache_clear()
    with caplog.at_level(logging.WARNING, logger="snsm"):
        partition = resolve_partition((13,), 4)
    assert partition.per_coordinate
    assert "subsets of 1" in caplog.text and "13" in caplog.text


def test_sum_squares_sums_each_subset():
    grad = torch.arange(12.0).reshape(4, 3)
    rows = sum_squares(grad, Partition((4, 3), (1,)))
    torch.testing.assert_close(rows, grad.square().sum(1, keepdim=True))
    whole = sum_squares(grad, resolve_partition((4, 3), "tensor"))
    torch.testing.assert_close(whole, grad.square().sum().reshape(1))
