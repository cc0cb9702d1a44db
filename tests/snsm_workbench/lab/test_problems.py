"""The lab's objectives, noise models and fits."""

from __future__ import annotations

import math

import pytest
import torch

from snsm_workbench.lab import problems
from snsm_workbench.lab.fitting import first_hit, loglog_slope, median_or_nan, slope


@pytest.mark.parametrize("shape", ["wavy", "pl"])
def test_gradients_match_autograd_and_smoothness_bounds_curvature(shape):
    problem = problems.Separable(torch.tensor([1.0, 0.5, 2.0]), shape)
    x = torch.linspace(-4, 4, 300).repeat(3, 1).T.contiguous().requires_grad_()
    problem.value(x).sum().backward()
    torch.testing.assert_close(problem.grad(x.detach()), x.grad)
    h = 1e-3
    curvature = (problem.grad(x.detach() + h) - problem.grad(x.detach() - h)) / (2 * h)
    assert (curvature.abs() <= problem.smoothness * 1.001).all()
    assert (curvature < 0).any(), "the objective should be non-convex"


def test_unknown_shape_is_a_value_error():
    with pytest.raises(ValueError, match="shape must be one of"):
        problems.Separable(torch.ones(2), "nope")


def test_sub_weibull_noise_has_unit_variance_and_heavier_tails_with_theta():
    kurtosis = []
    for theta in (0.5, 1.0, 2.0):
        z = problems.sub_weibull_noise((200_000,), theta, problems.generator(0))
        assert abs(z.mean().item()) < 0.02 and abs(z.var().item() - 1) < 0.05 * (1 + theta)
        kurtosis.append((z**4).mean().item())
    assert kurtosis[0] < kurtosis[1] < kurtosis[2]
    assert abs(kurtosis[1] - 6.0) < 0.5  # Laplace: kurtosis 6
    with pytest.raises(ValueError, match="theta"):
        problems.sub_weibull_noise((2,), 0.0, problems.generator(0))


def test_noise_draws_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    problems.gaussian_noise((4, 3), 1.0, problems.generator(1))
    problems.sub_weibull_noise((4, 3), 2.0, problems.generator(1))
    assert torch.equal(state, torch.get_rng_state())


def test_fits():
    xs = [1, 2, 4, 8]
    assert loglog_slope(xs, [3 * x**-0.5 for x in xs]) == pytest.approx(-0.5)
    assert slope(xs, [2 * x + 1 for x in xs]) == pytest.approx(2.0)
    assert math.isnan(slope([1], [1]))
    hits = torch.full((3,), -1)
    first_hit(torch.tensor([0.5, 2.0, 0.1]), 1.0, hits, 4)
    first_hit(torch.tensor([0.1, 0.1, 0.1]), 1.0, hits, 9)
    assert hits.tolist() == [4, 9, 4]
    assert median_or_nan(torch.tensor([3, 5, -1])) == 5 and math.isnan(median_or_nan(
        torch.tensor([3, -1, -1])))
