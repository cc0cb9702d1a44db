"""subset-norm: the batched rows are the library's AdaGrad-Norm / heuristic AdaGrad-SN, and
the fitted exponents of the quick run sit where the mechanism puts them."""

from __future__ import annotations

import torch

import snsm
from snsm.lab import subset_norm


def _steps(optimizer, params, grads):
    for grad_step in grads:
        for param, grad in zip(params, grad_step):
            param.grad = grad.clone()
        optimizer.step()


def test_batched_rows_with_subset_d_equal_adagrad_norm_per_row():
    gen = torch.Generator().manual_seed(0)
    seeds, d = 3, 64
    x = torch.randn(seeds, d, generator=gen)
    grads = [torch.randn(seeds, d, generator=gen) for _ in range(5)]
    batched = x.clone().requires_grad_()
    _steps(subset_norm.make_optimizer("norm", batched, 4, 0.3, 1e-8), [batched],
           [[g] for g in grads])
    for row in range(seeds):
        single = x[row].clone().requires_grad_()
        _steps(snsm.AdaGradNorm([single], lr=0.3, eps=1e-8), [single], [[g[row]] for g in grads])
        torch.testing.assert_close(batched.detach()[row], single.detach())


def test_batched_rows_with_subset_n_equal_the_heuristic_on_the_matrix():
    gen = torch.Generator().manual_seed(1)
    side, seeds = 4, 2
    d = 4 * side * side
    x = torch.randn(seeds, d, generator=gen)
    grads = [torch.randn(seeds, d, generator=gen) for _ in range(5)]
    batched = x.clone().requires_grad_()
    _steps(subset_norm.make_optimizer("heuristic", batched, side, 0.3, 1e-8), [batched],
           [[g] for g in grads])
    for row in range(seeds):
        matrix = x[row].view(4 * side, side).clone().requires_grad_()
        optimizer = snsm.AdaGradSN([matrix], lr=0.3, betas=(0.0, 0.999), eps=1e-8)
        _steps(optimizer, [matrix], [[g[row].view(4 * side, side)] for g in grads])
        assert optimizer.state[matrix]["accumulator"].shape == (4 * side, 1)
        torch.testing.assert_close(batched.detach()[row], matrix.detach().flatten())


def test_quick_exponents(figure):
    fig = figure("subset-norm")
    # Dense noise: d independent noisy coordinates, each with its own noise floor: ~ d^1.
    assert 0.7 <= fig["dense_coordinate_exponent"] <= 1.5
    # Sparse noise: 4 noisy coordinates whatever d: coordinate AdaGrad is about d-free.
    assert -0.5 <= fig["sparse_coordinate_exponent"] <= 0.5
    # One step size for all d coordinates (lr fixed over d): far steeper, at least the
    # paper's d^2.1 / d^2.5 orders; sqrt(d) subsets sit between norm and coordinate.
    assert fig["dense_norm_exponent"] >= 2.0
    assert fig["dense_coordinate_exponent"] < fig["dense_sqrt_exponent"] < fig[
        "dense_norm_exponent"]
    assert fig["sparse_sqrt_exponent"] < fig["sparse_norm_exponent"]
