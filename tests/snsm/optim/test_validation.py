import math

import pytest

from snsm import checks as check


@pytest.mark.parametrize("value", [-1.0, math.inf, math.nan, "0.1", None, True])
def test_nonnegative_rejects(value):
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        check.check_nonnegative("lr", value)


@pytest.mark.parametrize("value", [0, 0.0, 3, 1e-3])
def test_nonnegative_accepts(value):
    assert check.check_nonnegative("lr", value) == value


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 1.0), (-0.1, 0.9), "ab", (0.9, None)])
def test_betas_rejects(betas):
    with pytest.raises(ValueError, match="betas"):
        check.check_betas(betas)


@pytest.mark.parametrize("value", [0, -3, 1.5, True, "2"])
def test_int_rejects(value):
    with pytest.raises(ValueError, match=r"rank must be an integer >= 1, got"):
        check.check_int("rank", value)


def test_choice_lists_the_choices():
    with pytest.raises(ValueError, match="'svd', 'rsvd'.*got 'qr'"):
        check.check_choice("projector", "qr", ["svd", "rsvd"])
