"""snsm.AdamSNSM equals the one-loop reference written beside the paper, bit for bit."""

from __future__ import annotations

import io

import pytest
import torch

import snsm
from problems import clone_params, grad_stream, make_params, run
from snsm.optim.reference import AdamSNSMReference

# Tall (8, 6), wide (6, 10), a 3-D tensor viewed as (3, 20), a vector and a scalar. Rank 2 is
# below every matrix side; update_gap 3 over 10 steps refreshes on steps 1, 4, 7 and 10.
HP = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1, rank=2, update_gap=3)
STEPS = 10


def _groups(params, two_groups: bool, **hp):
    """One group, or the matrices with SNSM and the rest (one matrix too) in a plain group."""
    if not two_groups:
        return [{"params": params, **hp}]
    plain = {"lr": 3e-3, "use_snsm": False}
    return [{"params": params[:2], **hp}, {"params": params[2:], **hp, **plain}]


def _run_both(ours_hp: dict, reference_hp: dict, two_groups: bool = False, foreach=False):
    params = make_params()
    grads = grad_stream(params, STEPS)
    ours, reference = clone_params(params), clone_params(params)
    run(snsm.AdamSNSM(_groups(ours, two_groups, **ours_hp), foreach=foreach), ours, grads)
    run(AdamSNSMReference(_groups(reference, two_groups, **reference_hp)), reference, grads)
    return params, ours, reference


@pytest.mark.parametrize("two_groups", [False, True], ids=["one-group", "plain-group"])
@pytest.mark.parametrize("foreach", [False, True], ids=["single-tensor", "foreach"])
def test_adamsnsm_equals_the_reference_bit_for_bit(foreach, two_groups):
    # The reference runs the library's operations in the library's order (lerp_ EMAs, addmm
    # back-projection, vector_norm subset sums, the same SVD), so the bits agree exactly.
    params, ours, reference = _run_both(HP, HP, two_groups, foreach)
    for start, a, b in zip(params, ours, reference):
        assert not torch.equal(a, start)  # every tensor moved
        assert torch.equal(a, b), f"shape {tuple(a.shape)}: max diff {(a - b).abs().max()}"


@pytest.mark.parametrize("change", [dict(rank=3), dict(update_gap=4), dict(weight_decay=0.0),
                                    dict(betas=(0.8, 0.99))], ids=lambda c: next(iter(c)))
def test_a_changed_hyperparameter_breaks_the_equality(change):
    _, ours, reference = _run_both(HP, {**HP, **change})
    matrices = [(a, b) for a, b in zip(ours, reference) if a.dim() >= 2]
    assert not any(torch.equal(a, b) for a, b in matrices)


def test_reference_state_is_tensors_and_numbers():
    params = make_params()
    optimizer = AdamSNSMReference(params, **HP)
    run(optimizer, params, grad_stream(params, 4))
    for state in optimizer.state.values():
        assert all(isinstance(v, (torch.Tensor, int)) for v in state.values())
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["state"][0]["step"] == 4


def test_reference_refuses_other_dtypes_and_bad_settings():
    with pytest.raises(ValueError, match="rank"):
        AdamSNSMReference(make_params(), rank=0)
    params = make_params(dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="float32"):
        run(AdamSNSMReference(params), params, grad_stream(params, 1))
