"""The family's special cases equal the optimizers they generalize."""

from __future__ import annotations

import pytest
import torch

import snsm
import snsm.optim.functional
from devices import assert_paths_agree, needs_cuda
from problems import clone_params, grad_stream, make_params, run
from snsm.projectors import PROJECTORS, get_projector


def _run_pair(ours, theirs, params, steps=12, seed=1):
    grads = grad_stream(params, steps, seed)
    a, b = clone_params(params), clone_params(params)
    run(ours(a), a, grads)
    run(theirs(b), b, grads)
    return a, b


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("extra", [{"weight_decay": 0.0}, {"weight_decay": 0.1, "maximize": True}],
                         ids=["plain", "wd"])
def test_adamw_equals_torch_adamw_bit_for_bit(device, foreach, extra):
    hp = dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-8, foreach=foreach, **extra)
    ours, theirs = _run_pair(lambda p: snsm.AdamW(p, **hp), lambda p: torch.optim.AdamW(p, **hp),
                             make_params(device))
    for a, b in zip(ours, theirs):
        assert_paths_agree(a, b)


@pytest.mark.parametrize("foreach", [False, True])
def test_adagrad_equals_torch_adagrad_bit_for_bit(device, foreach):
    hp = dict(lr=0.1, eps=1e-10, foreach=foreach)
    ours, theirs = _run_pair(lambda p: snsm.AdaGrad(p, **hp),
                             lambda p: torch.optim.Adagrad(p, **hp), make_params(device))
    for a, b in zip(ours, theirs):
        if device.type == "cuda":
            assert_paths_agree(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=0, atol=0 if not foreach else 1e-7)


@needs_cuda
def test_foreach_is_the_default_on_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(snsm.optim.functional, "foreach_step",
                        lambda *args: calls.append(args[0][0].device))
    params = make_params("cuda")
    run(snsm.AdamSNSM(params, rank=2), params, grad_stream(params, 1))
    assert calls and all(device.type == "cuda" for device in calls)


def test_subset_size_one_is_per_coordinate(device):
    hp = dict(lr=3e-3, eps=1e-8, weight_decay=0.0)
    ours, theirs = _run_pair(lambda p: snsm.AdamSN(p, subset_size=1, **hp),
                             lambda p: torch.optim.AdamW(p, **hp), make_params(device))
    for a, b in zip(ours, theirs):
        assert_paths_agree(a, b)


def test_subsets_of_one_coordinate_through_the_reduction_equal_per_coordinate():
    # A (m, 1) matrix under the heuristic sums one entry per row: the reduction path.
    params = make_params(shapes=[(9, 1), (5, 1, 1)])
    hp = dict(lr=3e-3, eps=1e-8, weight_decay=0.0)
    ours, theirs = _run_pair(lambda p: snsm.AdamSN(p, **hp), lambda p: torch.optim.AdamW(p, **hp),
                             params)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("projector", list(PROJECTORS))
@pytest.mark.parametrize("on_refresh,update_gap", [("reset", 100), ("project", 3)])
def test_subspace_at_full_rank_equals_ema(projector, on_refresh, update_gap, device):
    params = make_params(device, shapes=[(8, 6), (5, 9), (3, 4, 2)])
    hp = dict(lr=1e-2, weight_decay=0.01)
    ours, theirs = _run_pair(
        lambda p: snsm.SNSM(p, momentum="subspace", rank=64, projector=projector,
                            update_gap=update_gap, on_refresh=on_refresh, **hp),
        lambda p: snsm.SNSM(p, momentum="ema", **hp), params, steps=10)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_tensor_subset_is_adagrad_norm_by_hand():
    params = make_params(shapes=[(6, 4), (10,)])
    grads = grad_stream(params, steps=6)
    ours = clone_params(params)
    run(snsm.AdaGradNorm(ours, lr=0.5, eps=1e-6), ours, grads)
    for i, start in enumerate(params):
        x, total = start.detach().clone(), 0.0
        for step_grads in grads:
            g = step_grads[i]
            total += g.double().square().sum().item()
            x -= 0.5 * g / (total**0.5 + 1e-6)
        torch.testing.assert_close(ours[i], x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,dim", [((7, 3), 1), ((3, 7), 0), ((4, 2, 3), 0), ((6, 2, 2), 1)])
def test_adam_sn_heuristic_by_hand(shape, dim):
    b1, b2, eps, lr = 0.9, 0.99, 1e-6, 0.05
    (start,) = make_params(shapes=[shape])
    grads = grad_stream([start], steps=5)
    ours = clone_params([start])
    run(snsm.AdamSN(ours, lr=lr, betas=(b1, b2), eps=eps), ours, grads)
    x = start.detach().clone().reshape(shape[0], -1)
    m, v = torch.zeros_like(x), torch.zeros(x.shape[0] if dim == 1 else 1,
                                            1 if dim == 1 else x.shape[1])
    for t, (g,) in enumerate(grads, start=1):
        g = g.reshape(x.shape)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g.square().sum(dim, keepdim=True)
        x -= lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    torch.testing.assert_close(ours[0], x.reshape(shape), rtol=1e-5, atol=1e-6)


def test_sgd_sm_with_svd_by_hand():
    """N = P^T(m_hat) + (g - P^T P g) with P from the SVD of the refresh step's gradient."""
    b1, lr, rank, gap = 0.8, 0.1, 2, 3
    (start,) = make_params(shapes=[(9, 5)])
    grads = grad_stream([start], steps=7)
    ours = clone_params([start])
    run(snsm.SGDSM(ours, lr=lr, betas=(b1, 0.999), rank=rank, update_gap=gap), ours, grads)
    x = start.detach().clone()
    for t, (g,) in enumerate(grads, start=1):
        if (t - 1) % gap == 0:
            q = torch.linalg.svd(g, full_matrices=False).Vh[:rank].T  # n x r, right side
            m = torch.zeros(9, rank)
        m = b1 * m + (1 - b1) * (g @ q)
        x -= lr * (m @ q.T + g - g @ q @ q.T)
    torch.testing.assert_close(ours[0], x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("projector", ["svd", "uniform", "gaussian"])
def test_reset_happens_on_the_refresh_step_itself(projector):
    b1, gap = 0.9, 2
    (param,) = make_params(shapes=[(8, 6)])
    optimizer = snsm.AdamSNSM([param], betas=(b1, 0.999), rank=3, projector=projector,
                              update_gap=gap)
    grads = grad_stream([param], steps=3)
    run(optimizer, [param], grads)  # step 3 refreshes
    state = optimizer.state[param]
    low = get_projector(projector).project(grads[2][0], state)
    torch.testing.assert_close(state["momentum"], (1 - b1) * low)


def test_project_on_refresh_carries_momentum_into_the_new_basis():
    b1, gap = 0.9, 2
    (param,) = make_params(shapes=[(8, 6)])
    optimizer = snsm.AdamSNSM([param], betas=(b1, 0.999), rank=3, update_gap=gap,
                              on_refresh="project")
    grads = grad_stream([param], steps=3)
    run(optimizer, [param], grads[:2])
    state = optimizer.state[param]
    old_basis, old_m = state["basis"].clone(), state["momentum"].clone()
    run(optimizer, [param], grads[2:])
    new_basis = state["basis"]
    expected = b1 * (old_m @ old_basis.T @ new_basis) + (1 - b1) * grads[2][0] @ new_basis
    torch.testing.assert_close(state["momentum"], expected)
