"""snsm.optim.nonfinite.finite_flag: the one-reduction finite check of a gradient (aminmax)."""

import pytest
import torch

from snsm.optim.nonfinite import all_finite, finite_flag


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("size", [1, 7, 33, 4099])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_single_non_finite_value_anywhere_is_found(dtype, size, bad):
    generator = torch.Generator().manual_seed(0)
    for position in {0, size // 2, size - 1}:
        grad = torch.randn(size, generator=generator).to(dtype)
        assert bool(finite_flag(grad))
        grad[position] = bad
        assert not bool(finite_flag(grad)) and not all_finite([torch.ones(3), grad])


def test_empty_and_strided_gradients():
    assert bool(finite_flag(torch.empty(0, 4)))
    grad = torch.randn(64, 32).T
    grad[3, 5] = float("nan")
    assert not bool(finite_flag(grad)) and not bool(finite_flag(grad[:, 1::2][:, 2:3]))
