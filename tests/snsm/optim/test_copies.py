"""What controls a step survives deepcopy, pickle and state_dict: ``skip_nonfinite`` is a group
key, so a copy skips a non-finite step as the original does (it used to raise AttributeError:
the setting lived in the instance's ``__dict__``, which torch's ``__getstate__`` drops)."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

import snsm
from problems import clone_params, grad_stream, make_params, run

HPARAMS = dict(lr=1e-2, rank=2, update_gap=3)


def _params_of(optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _copied(kind: str, optimizer):
    """(the copy, its parameters): by deepcopy, pickle, or state_dict (saved and loaded with
    ``weights_only=True``: a live state dict shares its tensors, as torch's does) into a fresh
    optimizer built with ``skip_nonfinite=False`` (the state dict must bring the setting)."""
    if kind == "deepcopy":
        other = copy.deepcopy(optimizer)
    elif kind == "pickle":
        other = pickle.loads(pickle.dumps(optimizer))
    else:
        other = snsm.AdamSNSM(clone_params(_params_of(optimizer)), **HPARAMS,
                              state_precision=optimizer.param_groups[0]["state_precision"])
        buffer = io.BytesIO()
        torch.save(optimizer.state_dict(), buffer)
        buffer.seek(0)
        other.load_state_dict(torch.load(buffer, weights_only=True))
    return other, _params_of(other)


@pytest.mark.parametrize("precision", ["full", "8bit"])
@pytest.mark.parametrize("kind", ["deepcopy", "pickle", "state_dict"])
def test_a_copy_skips_a_nonfinite_step_counts_it_and_matches(kind, precision):
    params = make_params()
    grads = grad_stream(params, steps=5)
    poisoned = [g.clone() for g in grads[2]]
    poisoned[0][0, 0] = float("nan")
    original = snsm.AdamSNSM(params, **HPARAMS, state_precision=precision, skip_nonfinite=True)
    run(original, params, grads[:2] + [poisoned])
    assert original.skipped_steps == 1
    other, other_params = _copied(kind, original)
    assert other.param_groups[0]["skip_nonfinite"] is True
    before = [p.detach().clone() for p in other_params]
    run(other, other_params, [[g.clone() for g in poisoned]])  # skipped, not AttributeError
    assert all(torch.equal(p, b) for p, b in zip(other_params, before))
    # the count is carried by deepcopy and pickle; a fresh optimizer counts from 0
    assert other.skipped_steps == (1 if kind == "state_dict" else 2)
    run(original, params, grads[3:])
    run(other, other_params, grads[3:])
    for got, want in zip(other_params, params):
        assert torch.equal(got, want)
    for got, want in zip(other.state_dict()["state"].values(),
                         original.state_dict()["state"].values()):
        assert got.keys() == want.keys()
        assert all(torch.equal(got[key], want[key]) for key in got)


def test_skip_nonfinite_is_one_setting_for_every_group():
    params = make_params()
    with pytest.raises(ValueError, match="skip_nonfinite applies to whole steps"):
        snsm.AdamW([{"params": params[:2]}, {"params": params[2:], "skip_nonfinite": True}])
    optimizer = snsm.AdamW([{"params": params[:2]}, {"params": params[2:]}],
                           skip_nonfinite=True)
    assert [g["skip_nonfinite"] for g in optimizer.param_groups] == [True, True]
    with pytest.raises(ValueError, match="skip_nonfinite must be True or False"):
        snsm.AdamW(params, skip_nonfinite=1)


def test_an_old_state_dict_without_the_key_loads_with_the_default():
    params = make_params()
    saved = snsm.AdamW(params, skip_nonfinite=True).state_dict()
    for group in saved["param_groups"]:
        del group["skip_nonfinite"]
    optimizer = snsm.AdamW(params, skip_nonfinite=True)
    optimizer.load_state_dict(saved)
    assert optimizer.param_groups[0]["skip_nonfinite"] is True


def test_step_parameter_reads_the_groups_a_load_brought():
    """The positions cache of :meth:`step_parameter` holds groups; a load replaces them."""
    params = make_params()
    grads = grad_stream(params, steps=2)
    optimizer = snsm.AdamW(params, lr=1e-2, weight_decay=0.0)
    optimizer.step_parameter(params[0], grads[0][0])
    saved = optimizer.state_dict()
    saved["param_groups"][0]["lr"] = 0.0
    optimizer.load_state_dict(saved)
    before = params[0].detach().clone()
    optimizer.step_parameter(params[0], grads[1][0])
    assert torch.equal(params[0], before)  # lr 0: no move
