"""Steps inside the backward pass with accumulation windows that are not regular: a skipped
(non-finite) window, parameters that get no gradient in some micro-batches, parameters
unfrozen after attaching. Each run equals the regular ``step()`` run bit for bit."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import snsm
from optim_db import OPTIM_DB
from problems import make_params

pytestmark = pytest.mark.parametrize("info", OPTIM_DB, ids=lambda info: info.id)


def _loss(params, batch: int, used=None, nan=False):
    """A seeded quadratic of the parameters ``used`` (default: all) in micro-batch ``batch``;
    the targets are drawn for every parameter, so a parameter's term does not depend on
    which others are used. ``nan``: the loss times NaN (every gradient non-finite)."""
    gen = torch.Generator().manual_seed(100 + batch)
    total = 0.0
    for i, param in enumerate(params):
        target = torch.randn(param.shape, generator=gen)
        weight = torch.rand(param.shape, generator=gen) + 0.5
        if used is None or i in used:
            total = total + (weight * (param - target) ** 2).sum()
    return total * float("nan") if nan else total


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(p.detach()) for p in make_params()])

    def forward(self, batch: int, used=None, nan=False):
        return _loss(self.weights, batch, used, nan)


def _train(info, in_backward: bool, windows: int, accumulation: int, *, used=lambda b: None,
           nan_batches=(), frozen=(), unfreeze_at=None, through_forward=True):
    """``windows`` optimizer steps of ``accumulation`` micro-batches; ``frozen`` parameters
    (by position) start with requires_grad off and are unfrozen before window
    ``unfreeze_at``. A non-finite window is skipped, as a training loop does."""
    model = _Net()
    for i in frozen:
        model.weights[i].requires_grad_(False)
    optimizer = info.make(list(model.weights))
    if in_backward:
        snsm.step_in_backward(model, optimizer, accumulation)
    for window in range(windows):
        if window == unfreeze_at:
            for i in frozen:
                model.weights[i].requires_grad_(True)
        if not any(p.requires_grad for p in model.weights):
            continue  # nothing to train yet
        try:
            for batch in range(window * accumulation, (window + 1) * accumulation):
                args = (batch, used(batch), batch in nan_batches)
                (model(*args) if through_forward else _loss(model.weights, *args)).backward()
            optimizer.step()
        except snsm.NonFiniteGradientError:
            pass
        optimizer.zero_grad()
    return model, optimizer


def _assert_same(a, b):
    (model_a, opt_a), (model_b, opt_b) = a, b
    for pa, pb in zip(model_a.weights, model_b.weights):
        assert torch.equal(pa, pb)
    for pa, pb in zip(model_a.weights, model_b.weights):
        sa, sb = opt_a.state[pa], opt_b.state[pb]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("nan_batch", [2, 3])  # the first or the last micro-batch of window 1
def test_a_skipped_window_keeps_every_parameter_in_phase(info, nan_batch):
    runs = [_train(info, flag, 4, 2, nan_batches=(nan_batch,)) for flag in (False, True)]
    _assert_same(*runs)
    assert all(p.grad is None for p in runs[1][0].weights)


def test_a_skipped_window_drops_its_gradients_without_zero_grad(info):
    model = _Net()
    optimizer = info.make(list(model.weights))
    handle = snsm.step_in_backward(model, optimizer, 2)
    model(0, nan=True).backward()
    with pytest.raises(snsm.NonFiniteGradientError):
        model(1).backward()
    assert handle.passes == 2 and all(p.grad is None for p in model.weights)


def test_parameters_without_a_gradient_in_some_micro_batches_update_as_step_would(info):
    def used(batch):  # each parameter misses some micro-batches, some whole windows
        return {i for i in range(5) if (3 * i + batch) % 4 != 0 and (i, batch // 3) != (4, 1)}

    for accumulation in (2, 3):
        _assert_same(*[_train(info, flag, 4, accumulation, used=used) for flag in (False, True)])


@pytest.mark.parametrize("through_forward", [True, False])
def test_a_parameter_unfrozen_after_attaching_is_trained(info, through_forward):
    runs = [_train(info, flag, 4, 2, frozen=(0, 3), unfreeze_at=2,
                   through_forward=through_forward) for flag in (False, True)]
    _assert_same(*runs)
    assert all(p.grad is None for p in runs[1][0].weights)


def test_every_parameter_frozen_at_attach_then_unfrozen_is_trained(info):
    _assert_same(*[_train(info, flag, 3, 1, frozen=range(5), unfreeze_at=1)
                   for flag in (False, True)])


class _Checkpointed(nn.Module):
    """Two matrices, the second inside a reentrant activation checkpoint (its backward runs
    as a nested backward pass, as HF's gradient_checkpointing_enable() does by default)."""

    def __init__(self):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(p.detach())
                                         for p in make_params(shapes=[(8, 6), (6, 10)])])

    def forward(self, batch: int):
        inputs = torch.randn(4, 8, generator=torch.Generator().manual_seed(100 + batch))
        hidden = inputs @ self.weights[0]
        hidden = checkpoint(lambda h: torch.tanh(h @ self.weights[1]), hidden,
                            use_reentrant=True)
        return (hidden - 0.5).square().sum()


def test_reentrant_activation_checkpointing_keeps_the_windows(info):
    def train(in_backward: bool):
        model = _Checkpointed()
        optimizer = info.make(list(model.weights))
        if in_backward:
            snsm.step_in_backward(model, optimizer, 2)
        for window in range(3):
            for batch in (2 * window, 2 * window + 1):
                model(batch).backward()
            optimizer.step()
            optimizer.zero_grad()
        return model, optimizer

    _assert_same(train(False), train(True))


def test_a_backward_pass_stopped_by_another_error_abandons_its_window(info):
    """An error raised in the backward pass by something else (here a hook of the user's)
    skips its window: the next forward pass finds the pass unfinished and starts anew."""
    runs = [_train(info, flag, 4, 2, nan_batches=(2,)) for flag in (False, True)]

    model = _Net()
    optimizer = info.make(list(model.weights))
    handle = snsm.step_in_backward(model, optimizer, 2)
    for window in range(4):
        for batch in (2 * window, 2 * window + 1):
            loss = model(batch)
            if batch == 2:  # stands for an out-of-memory error in the first micro-batch
                def fail(grad):
                    raise RuntimeError("out of memory")
                loss.register_hook(fail)
            try:
                loss.backward()
            except RuntimeError:
                break  # a loop skips the rest of the window
        optimizer.zero_grad()
    assert handle.passes == 8  # the abandoned window counts whole
    _assert_same(runs[0], (model, optimizer))
