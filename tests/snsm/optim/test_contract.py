"""Contract tests: every optimizer of the table in optim_db runs through the same checks."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import snsm
import snsm.optim.nonfinite
from devices import assert_paths_agree
from optim_db import OPTIM_DB, OptimInfo
from snsm.optim.plan import GroupHParams, accumulator_dtype
from problems import (clone_params, descend, grad_stream, make_params, quadratic, rosenbrock,
                      run)

pytestmark = pytest.mark.parametrize("info", OPTIM_DB, ids=lambda info: info.id)


@pytest.fixture(autouse=True)
def _skip_listed(request, info: OptimInfo):
    """Skip the tests an entry lists in ``skips`` (with the entry's reason)."""
    if request.node.originalname in info.skips:
        pytest.skip(info.skips[request.node.originalname])


def test_skips_name_contract_tests(info):
    tests = {name for name in globals() if name.startswith("test_")}
    assert set(info.skips) <= tests, set(info.skips) - tests


BAD_VALUES = [
    ("lr", -1e-3), ("lr", float("nan")), ("eps", -1.0), ("weight_decay", -0.1),
    ("betas", (1.0, 0.999)), ("betas", (0.9, -0.1)), ("betas", (0.9,)),
    ("rank", 0), ("rank", 2.5), ("update_gap", 0), ("projector", "qr"),
    ("on_refresh", "keep"), ("subset_size", 0), ("subset_size", "rows"), ("seed", -1),
    ("foreach", "yes"), ("maximize", 1),
]


@pytest.mark.parametrize("key,value", BAD_VALUES, ids=[f"{k}={v}" for k, v in BAD_VALUES])
def test_invalid_hyperparameter_raises_value_error_naming_it(info, key, value):
    if not info.accepts(key):
        pytest.skip(f"{info.cls.__name__} takes no {key}")
    with pytest.raises(ValueError, match=key) as error:
        info.make(make_params(), **{key: value})
    assert repr(value) in str(error.value) or str(value) in str(error.value)


def test_invalid_group_value_and_unknown_group_key_raise(info):
    params = make_params()
    with pytest.raises(ValueError, match="lr"):
        info.make([{"params": params[:2], "lr": -1.0}, {"params": params[2:]}])
    with pytest.raises(ValueError, match="subset_sise"):
        info.make([{"params": params, "subset_sise": 4}])


def test_descends_on_quadratic(info, device):
    params, loss_fn = quadratic(device)
    first, last = descend(info.make(params), params, loss_fn, steps=200)
    assert last < 0.5 * first


def test_descends_on_rosenbrock(info, device):
    params, loss_fn = rosenbrock(device)
    first, last = descend(info.make(params), params, loss_fn, steps=300)
    assert last < 0.1 * first


@pytest.mark.parametrize("extra", [{}, {"weight_decay": 0.1, "maximize": True}],
                         ids=["plain", "wd+maximize"])
def test_foreach_matches_single_tensor(info, device, extra):
    params = make_params(device)
    grads = grad_stream(params, steps=8)
    results = []
    for foreach in (False, True):
        copies = clone_params(params)
        run(info.make(copies, foreach=foreach, **extra), copies, grads)
        results.append(copies)
    for single, multi in zip(*results):
        assert_paths_agree(multi, single)


def test_state_dict_loads_with_weights_only_and_resume_is_bit_exact(info, tmp_path, device):
    params = make_params(device)
    grads = grad_stream(params, steps=10)  # update_gap=3: refreshes at 1, 4, 7, 10
    reference = clone_params(params)
    run(info.make(reference), reference, grads)

    first = clone_params(params)
    optimizer = info.make(first)
    run(optimizer, first, grads[:5])
    path = tmp_path / "optimizer.pt"
    torch.save(optimizer.state_dict(), path)
    for state in optimizer.state_dict()["state"].values():
        assert all(isinstance(v, (torch.Tensor, int, float)) for v in state.values())

    resumed = clone_params(first)
    optimizer = info.make(resumed)
    optimizer.load_state_dict(torch.load(path, weights_only=True))
    run(optimizer, resumed, grads[5:])
    for got, want in zip(resumed, reference):
        assert torch.equal(got, want)


def test_deepcopy_continues_identically(info, device):
    params = make_params(device)
    grads = grad_stream(params, steps=6)
    optimizer = info.make(params)
    run(optimizer, params, grads[:2])
    params_copy, optimizer_copy = copy.deepcopy((params, optimizer))
    run(optimizer, params, grads[2:])
    run(optimizer_copy, params_copy, grads[2:])
    for a, b in zip(params, params_copy):
        assert torch.equal(a, b)


def test_params_without_grad_are_skipped(info, device):
    params = make_params(device)
    before = clone_params(params)
    optimizer = info.make(params)
    params[0].grad = torch.ones_like(params[0])
    optimizer.step()
    assert not torch.equal(params[0], before[0])
    for param, old in zip(params[1:], before[1:]):
        assert torch.equal(param, old)
        assert param not in optimizer.state


def test_global_rng_untouched_and_nothing_printed(info, capsys, device):
    params = make_params(device)
    grads = grad_stream(params, steps=7)
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    run(info.make(params), params, grads)
    assert torch.equal(torch.get_rng_state(), rng)
    if cuda_rng is not None:
        assert torch.equal(torch.cuda.get_rng_state(device), cuda_rng)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_lr_scheduler_drives_the_learning_rate(info, device):
    params = make_params(device)
    optimizer = info.make(params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.0)
    before = clone_params(params)
    run(optimizer, params, grad_stream(params, steps=3))
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.0
    for param, old in zip(params, before):
        assert torch.equal(param, old)


def _snapshot(optimizer, params):
    return clone_params(params), copy.deepcopy(optimizer.state_dict())


def _assert_unchanged(optimizer, params, snapshot):
    old_params, old_state = snapshot
    for param, old in zip(params, old_params):
        assert torch.equal(param, old)
    state = optimizer.state_dict()["state"]
    assert state.keys() == old_state["state"].keys()
    for pid, entry in state.items():
        for key, value in entry.items():
            assert torch.equal(value, old_state["state"][pid][key]), (pid, key)


def test_sparse_gradient_raises_with_nothing_changed(info, device):
    params = make_params(device)
    optimizer = info.make([{"params": params[:2]}, {"params": params[2:]}])
    run(optimizer, params, grad_stream(params, steps=2))
    snapshot = _snapshot(optimizer, params)
    for param, grad in zip(params, grad_stream(params, steps=1)[0]):
        param.grad = grad
    last = params[-1]  # in the second group: the first group must not move either
    last.grad = last.grad.to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        optimizer.step()
    _assert_unchanged(optimizer, params, snapshot)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nonfinite_gradient_on_a_refresh_step_raises_with_nothing_changed(info, bad, device):
    params = make_params(device)
    grads = grad_stream(params, steps=5)  # update_gap=3: step 4 refreshes the projectors
    optimizer = info.make(params)
    run(optimizer, params, grads[:3])
    snapshot = _snapshot(optimizer, params)
    for param, grad in zip(params, grads[3]):
        param.grad = grad.clone()
    params[2].grad[0, 1, 2] = bad  # a 3-D tensor: its projector refreshes on this step
    with pytest.raises(snsm.NonFiniteGradientError, match="parameter 2"):
        optimizer.step()
    _assert_unchanged(optimizer, params, snapshot)


def test_skip_nonfinite_skips_the_whole_step_and_counts_it(info, caplog):
    params = make_params()
    grads = grad_stream(params, steps=5)
    reference = clone_params(params)
    run(info.make(reference), reference, grads[:3] + grads[4:])
    optimizer = info.make(params, skip_nonfinite=True)
    poisoned = [g.clone() for g in grads[3]]
    poisoned[0][0, 0] = float("nan")
    with caplog.at_level("WARNING"):
        run(optimizer, params, grads[:3] + [poisoned] + grads[4:])
    assert optimizer.skipped_steps == 1 and "step skipped" in caplog.text
    for got, want in zip(params, reference):
        assert torch.equal(got, want)


def _on_device(device, monkeypatch):
    """The device-side skip of ``skip_nonfinite`` (CUDA's path), forced on the CPU too."""
    if device.type == "cpu":
        monkeypatch.setattr(snsm.optim.nonfinite, "on_device", lambda grads: True)


def test_skip_nonfinite_on_a_device_changes_nothing_but_the_step_count(info, device,
                                                                       monkeypatch):
    _on_device(device, monkeypatch)
    params = make_params(device)
    grads = grad_stream(params, steps=6)  # update_gap=3: step 4 refreshes the projectors
    optimizer = info.make(params, skip_nonfinite=True)
    run(optimizer, params, grads[:3])
    old_params, old_state = _snapshot(optimizer, params)
    poisoned = [g.clone() for g in grads[3]]
    poisoned[2][0, 1, 2] = float("nan")
    run(optimizer, params, [poisoned])
    assert optimizer.skipped_steps == 1
    for param, old in zip(params, old_params):
        assert torch.equal(param, old)
    for pid, entry in optimizer.state_dict()["state"].items():
        for key, value in entry.items():
            expected = old_state["state"][pid][key] + (1 if key == "step" else 0)
            assert torch.equal(value, expected), (pid, key)
    run(optimizer, params, grads[4:])
    assert optimizer.skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(p, old) for p, old in zip(params, old_params))


def test_skip_nonfinite_on_a_device_equals_the_plain_step_when_finite(info, device,
                                                                      monkeypatch):
    params = make_params(device)
    grads = grad_stream(params, steps=5)
    plain = clone_params(params)
    run(info.make(plain), plain, grads)
    _on_device(device, monkeypatch)
    gated = clone_params(params)
    optimizer = info.make(gated, skip_nonfinite=True)
    run(optimizer, gated, grads)
    assert optimizer.skipped_steps == 0
    for got, want in zip(gated, plain):
        assert_paths_agree(got, want)


def test_add_param_group_validates_before_adding(info):
    params = make_params()
    optimizer = info.make(params[:2])
    with pytest.raises(ValueError, match="complex"):
        optimizer.add_param_group({"params": [torch.zeros(3, dtype=torch.complex64,
                                                          requires_grad=True)]})
    with pytest.raises(ValueError, match="lr"):
        optimizer.add_param_group({"params": params[2:], "lr": -1.0})
    assert len(optimizer.param_groups) == 1
    optimizer.add_param_group({"params": params[2]})  # a lone tensor, as torch accepts
    assert len(optimizer.param_groups) == 2


def test_bf16_parameters_step_with_bf16_state(info, device):
    """Momenta and bases in bf16; accumulators as ``accumulator_dtype`` says (float32 for the
    sums of subsets, which would lose the gradient in 8 bits)."""
    params = make_params(device, dtype=torch.bfloat16)
    optimizer = info.make(params)
    run(optimizer, params, grad_stream(params, steps=4))
    hp = GroupHParams.from_group(optimizer.param_groups[0])
    for param in params:
        assert torch.isfinite(param.float()).all()
        plan = hp.plan(tuple(param.shape))
        for key, value in optimizer.state[param].items():
            if not value.is_floating_point() or key == "step":
                continue
            expected = torch.bfloat16 if key != "accumulator" else \
                accumulator_dtype(torch.bfloat16, plan.partition, hp.accumulator)
            if key.endswith("_scale"):  # the absmax per block of an 8-bit state
                expected = torch.float32
            assert value.dtype == expected, key


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_16_bit_parameters_keep_moving_when_sums_exceed_their_range(info, dtype):
    # sums of 256 squares of 30: 230400 > 65504, fp16's largest value
    param = torch.zeros(16, 256, dtype=dtype, requires_grad=True)
    optimizer = info.make([param], lr=1e-3)
    for step in range(3):
        before = param.detach().clone()
        param.grad = torch.full_like(param, 30.0)
        optimizer.step()
        assert torch.isfinite(param.float()).all()
        assert (param != before).any(), f"frozen at step {step + 1}"
