"""high-probability: rates of the quantiles in T and their growth in 1/delta, for SGD,
AdaGrad-Norm and the paper's AdaGrad-SN and SGD-SM; the batched forms are the library's."""

from __future__ import annotations

import pytest
import torch

import snsm
from snsm_workbench.lab import high_probability as exp


def test_quick_quantile_rates(figure):
    fig = figure("high-probability")
    for method in exp.METHODS:
        assert -0.7 <= fig[f"{method}_noisy_slope"] <= -0.3, method  # sigma / sqrt T
        assert -1.2 <= fig[f"{method}_noiseless_slope"] <= -0.8, method  # 1 / T
        assert 0.0 <= fig[f"{method}_delta_exponent"] <= 0.25, method  # log(1/delta)
    assert 1.0 < fig["sgd_q99_over_median"] < 3.0


@pytest.mark.parametrize("method", ["sgd", "sgd_sm"])
def test_noisy_step_tuned_to_t_needs_its_horizon(method):
    with pytest.raises(ValueError, match="one horizon"):
        exp.average_grad_sq(method, (10, 20), 1.0, exp.QUICK, 0)


def test_step_size_of_the_analysis():
    assert exp.sgd_step_size(100, 0.0, 5.0) == 1.0
    assert exp.sgd_step_size(400, 1.0, 2.0) == pytest.approx(0.1)


def _grads(seeds, steps, gen):
    return [torch.randn(seeds, *exp.MATRIX, generator=gen) for _ in range(steps)]


def test_batched_sgd_sm_equals_the_library_on_each_matrix():
    """Refreshes on steps 1, 6, 11 (momentum reset, new basis), rank 1 of (5, 2)."""
    gen = torch.Generator().manual_seed(0)
    seeds, lr, gap = 3, 0.2, 5
    x = torch.randn(seeds, *exp.MATRIX, generator=gen)
    grads = _grads(seeds, 12, gen)
    batch = x.clone()
    optimizer = exp.BatchedSGDSM(batch, lr, beta1=0.9, rank=1, update_gap=gap)
    for grad in grads:
        optimizer.step(grad)
    for row in range(seeds):
        single = x[row].clone()
        library = snsm.SGDSM([single], lr=lr, betas=(0.9, 0.999), rank=1, projector="svd",
                             update_gap=gap)
        for grad in grads:
            single.grad = grad[row].clone()
            library.step()
        torch.testing.assert_close(batch[row], single)
    # a momentum that were not restarted (or a full-rank basis) would not match plain SGD here
    assert not torch.allclose(batch, x - lr * sum(grads))


def test_adagrad_sn_rows_are_the_heuristic_on_each_matrix():
    gen = torch.Generator().manual_seed(1)
    seeds = 3
    x = torch.randn(seeds, 10, generator=gen)
    grads = [g.view(seeds, 10) for g in _grads(seeds, 6, gen)]
    batch = x.clone()
    optimizer = exp.make_optimizer("adagrad_sn", batch, 1.0, exp.QUICK)
    for grad in grads:
        batch.grad = grad.clone()
        optimizer.step()
    for row in range(seeds):
        single = x[row].view(*exp.MATRIX).clone()
        library = snsm.AdaGradSN([single], lr=1.0, betas=(0.0, 0.999), eps=1e-8)
        for grad in grads:
            single.grad = grad[row].view(*exp.MATRIX).clone()
            library.step()
        assert library.state[single]["accumulator"].shape == (exp.MATRIX[0], 1)
        torch.testing.assert_close(batch[row], single.flatten())
