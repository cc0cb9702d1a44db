"""Steps inside the backward pass equal the regular step bit for bit."""

import pytest
import torch
from torch import nn

import snsm
from optim_db import OPTIM_DB
from problems import make_params

pytestmark = pytest.mark.parametrize("info", OPTIM_DB, ids=lambda info: info.id)


def _model():
    return nn.ParameterList([nn.Parameter(p.detach()) for p in make_params()])


def _loss(model, batch: int):
    """A seeded quadratic per micro-batch: grads 2 w (p - t), different for every batch."""
    gen = torch.Generator().manual_seed(100 + batch)
    total = 0.0
    for param in model:
        target = torch.randn(param.shape, generator=gen)
        weight = torch.rand(param.shape, generator=gen) + 0.5
        total = total + (weight * (param - target) ** 2).sum()
    return total


def _train(info, steps: int, in_backward: bool, accumulation: int = 1, schedule=False,
           max_norm=None):
    model = _model()
    optimizer = info.make(list(model))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.7 ** s) \
        if schedule else None
    if in_backward:
        snsm.step_in_backward(model, optimizer, accumulation, max_norm)
    for step in range(steps):
        for micro in range(accumulation):
            _loss(model, step * accumulation + micro).backward()
        if not in_backward and max_norm is not None:
            for param in model:  # the per-parameter rule, by hand
                norm = torch.linalg.vector_norm(param.grad, dtype=torch.float32)
                param.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
        optimizer.step()
        optimizer.zero_grad()
        if scheduler:
            scheduler.step()
    return model, optimizer


def _assert_same(a, b):
    (model_a, opt_a), (model_b, opt_b) = a, b
    for pa, pb in zip(model_a, model_b):
        assert torch.equal(pa, pb)
    for pa, pb in zip(model_a, model_b):
        sa, sb = opt_a.state[pa], opt_b.state[pb]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_equals_the_regular_step(info):  # update_gap=3: refreshes at steps 1 and 4
    _assert_same(_train(info, 5, False), _train(info, 5, True))


def test_gradient_accumulation_updates_once_on_the_last_micro_batch(info):
    _assert_same(_train(info, 3, False, accumulation=3), _train(info, 3, True, accumulation=3))
    model = _model()
    optimizer = info.make(list(model))
    snsm.step_in_backward(model, optimizer, accumulation_steps=2)
    before = [p.detach().clone() for p in model]
    _loss(model, 0).backward()
    assert all(torch.equal(p, b) for p, b in zip(model, before))
    assert all(p.grad is not None for p in model)
    _loss(model, 1).backward()
    assert all(p.grad is None for p in model)  # updated and freed
    assert not any(torch.equal(p, b) for p, b in zip(model, before))


def test_schedulers_and_per_parameter_clipping(info):
    _assert_same(_train(info, 4, False, schedule=True), _train(info, 4, True, schedule=True))
    _assert_same(_train(info, 3, False, max_norm=0.5), _train(info, 3, True, max_norm=0.5))


def test_state_dict_resume_is_exact(info):
    reference = _train(info, 6, True)
    model, optimizer = _train(info, 3, True)
    optimizer._in_backward.remove()
    saved = optimizer.state_dict()
    fresh = info.make(list(model))
    fresh.load_state_dict(saved)
    snsm.step_in_backward(model, fresh)
    for step in range(3, 6):
        _loss(model, step).backward()
        fresh.step()
    _assert_same(reference, (model, fresh))


def test_refusals_and_remove(info):
    model = _model()
    optimizer = info.make(list(model))
    with pytest.raises(ValueError, match="accumulation_steps"):
        snsm.step_in_backward(model, optimizer, accumulation_steps=0)
    with pytest.raises(ValueError, match="max_norm"):
        snsm.step_in_backward(model, optimizer, max_norm=-1.0)
    handle = snsm.step_in_backward(model, optimizer)
    with pytest.raises(ValueError, match="already attached"):
        snsm.step_in_backward(model, optimizer)
    handle.remove()
    _loss(model, 0).backward()
    assert all(p.grad is not None for p in model)  # no hook: gradients stay for step()
    before = [p.detach().clone() for p in model]
    optimizer.step()
    assert not all(torch.equal(p, b) for p, b in zip(model, before))
