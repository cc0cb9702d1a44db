"""subset-norm: the batched rows (one param group per lr) are the library's AdaGrad,
AdaGrad-Norm and heuristic AdaGrad-SN on one run; the problem keeps Delta and L fixed in d;
the quick run answers both questions, with a verdict for consistency only."""

from __future__ import annotations

import math

import pytest
import torch

import snsm
from snsm_workbench.lab import problems, subset_norm


def _run(optimizer, params, grads):
    for step in grads:
        for param, grad in zip(params, step):
            param.grad = grad.clone()
        optimizer.step()


def _batched(method, side, lrs, x, grads):
    """Every lr in its own param group over a (lrs, seeds, d) tensor, as the experiment runs."""
    batch = x.expand(len(lrs), -1, -1).clone()
    params = list(batch.unbind(0))
    optimizer = subset_norm.make_optimizer(params, lrs, subset_norm.subset_size(method, side),
                                           1e-8)
    _run(optimizer, params, [list(g.expand(len(lrs), -1, -1).unbind(0)) for g in grads])
    return batch


@pytest.mark.parametrize("method", ["coordinate", "norm", "heuristic"])
def test_batched_rows_equal_the_library_optimizer_on_one_run(method):
    gen = torch.Generator().manual_seed(0)
    side, seeds, lrs = 4, 2, (0.3, 3.0)
    d = 4 * side * side
    x = torch.randn(seeds, d, generator=gen)
    grads = [torch.randn(seeds, d, generator=gen) for _ in range(5)]
    batch = _batched(method, side, lrs, x, grads)
    for i, lr in enumerate(lrs):
        for row in range(seeds):
            if method == "heuristic":  # one subset per row of the (4 side, side) weight
                single = x[row].view(4 * side, side).clone()
                optimizer = snsm.AdaGradSN([single], lr=lr, betas=(0.0, 0.999), eps=1e-8)
            else:
                single = x[row].clone()
                cls = snsm.AdaGrad if method == "coordinate" else snsm.AdaGradNorm
                optimizer = cls([single], lr=lr, eps=1e-8)
            _run(optimizer, [single], [[g[row].view(single.shape)] for g in grads])
            if method == "heuristic":
                assert optimizer.state[single]["accumulator"].shape == (4 * side, 1)
            torch.testing.assert_close(batch[i, row], single.flatten())


def test_problem_keeps_delta_and_gradient_fixed_in_d_and_noise_density():
    gen_small, gen_large = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    small = subset_norm.initial_point(64, 2000, 3.0, gen_small)
    large = subset_norm.initial_point(16384, 2000, 3.0, gen_large)
    assert torch.equal(small[:, :subset_norm.ACTIVE], large[:, :subset_norm.ACTIVE])
    for x in (small, large):
        tail = x[:, subset_norm.ACTIVE:]
        # the d - 4 small coordinates: E sum x_i^2 = (d - 4) / 3d and f ~ 3.5 x^2 near 0
        expected = tail.shape[1] / (3 * x.shape[1])
        assert abs(tail.square().sum(-1).mean().item() - expected) < 0.01
        assert abs(problems.wavy(tail).sum(-1).mean().item() - 3.5 * expected) < 0.05
    assert [len(subset_norm.noisy_coordinates(1024, b, 0)) for b in (0.0, 0.5, 1.0)] == [
        1, 32, 1024]


def test_bound_exponents_are_the_rate_table():
    table = {(m, b): subset_norm.bound_exponent(m, b)
             for m in subset_norm.METHODS for b in subset_norm.BETAS}
    assert table["coordinate", 0.0] == table["coordinate", 1.0] == 2.5
    assert table["norm", 0.0] == 0.0 and table["norm", 1.0] == 3.0
    assert table["sqrt", 0.0] == 1.0 and table["sqrt", 0.5] == 1.5
    assert table["heuristic", 1.0] == pytest.approx(2.2)
    assert subset_norm.EXPECTED["beta1_sqrt_exponent"] == (None, pytest.approx(2.2 + 0.35))


def test_quick_run_answers_both_questions(quick_results, figure):
    item = quick_results["subset-norm"]
    verdicts = {q["name"]: q["verdict"] for q in item["questions"]}
    assert verdicts["practice"] == "reported"
    assert verdicts["consistency"] == item["verdict"] in ("holds", "fails")
    fig = figure("subset-norm")
    # AdaGrad-Norm under O(1) noisy coordinates: Delta, L and the noise do not grow with d.
    assert abs(fig["beta0_norm_exponent"]) <= 0.2
    # Per-coordinate steps blow each tiny coordinate up to ~lr: M grows about like d.
    assert fig["beta0_coordinate_exponent"] >= 0.5
    # Tuning at every d can only help: no tuned exponent far above its frozen one.
    for beta in subset_norm.BETAS:
        for method in subset_norm.METHODS:
            key = f"{subset_norm.label(beta)}_{method}"
            assert fig[f"{key}_tuned_exponent"] <= fig[f"{key}_exponent"] + 0.25, key
        for method in subset_norm.SUBSET_METHODS:
            key = f"{subset_norm.label(beta)}_{method}"
            assert fig[f"{key}_over_worst_last"] <= fig[f"{key}_over_best_last"]
            assert math.isfinite(fig[f"{key}_over_best_exponent"])
