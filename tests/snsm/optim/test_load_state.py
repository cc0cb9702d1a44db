"""load_state_dict refuses a state of another structure, and loads dtypes by the layout."""

import pytest
import torch

import snsm
from problems import grad_stream, make_params, run


def _trained(cls, **kwargs):
    params = make_params()
    optimizer = cls(params, **kwargs)
    run(optimizer, params, grad_stream(params, steps=2))
    return optimizer.state_dict()


@pytest.mark.parametrize("saved,loading,key", [
    ((snsm.AdamSNSM, {"rank": 2}), (snsm.AdamW, {}), "momentum='subspace'"),
    ((snsm.AdamSNSM, {"rank": 2}), (snsm.AdamSNSM, {"rank": 4}), "rank=2.*rank=4"),
    ((snsm.AdamSNSM, {"rank": 2}), (snsm.AdamSNSM, {"rank": 2, "projector": "uniform"}),
     "projector='svd'.*projector='uniform'"),
    ((snsm.AdamSN, {}), (snsm.AdamSN, {"subset_size": "sqrt"}), "subset_size"),
    ((snsm.AdaGradSN, {}), (snsm.AdamSN, {}), "accumulator='sum'"),
], ids=["snsm-into-adamw", "rank", "projector", "subset-rule", "accumulator"])
def test_a_state_of_another_structure_is_refused_naming_the_key(saved, loading, key):
    state = _trained(saved[0], **saved[1])
    optimizer = loading[0](make_params(), **loading[1])
    with pytest.raises(ValueError, match=key):
        optimizer.load_state_dict(state)
    assert not optimizer.state  # nothing was loaded


def test_harmless_settings_load_as_torch_does():
    state = _trained(snsm.AdamSNSM, rank=2, lr=0.1, betas=(0.8, 0.99), weight_decay=0.1)
    optimizer = snsm.AdamSNSM(make_params(), rank=2)
    optimizer.load_state_dict(state)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (0.1, (0.8, 0.99), 0.1)


def test_a_state_of_other_shapes_is_refused():
    state = _trained(snsm.AdamW)
    other = make_params(shapes=[(8, 6), (6, 10), (3, 4, 5), (8,), ()])
    with pytest.raises(ValueError, match=r"parameter 3 has momentum of shape \(7,\)"):
        snsm.AdamW(other).load_state_dict(state)


def test_state_dtypes_follow_the_layout_not_the_parameter():
    params = make_params(dtype=torch.float16)
    optimizer = snsm.AdamSNSM(params, rank=2, projector="uniform")
    run(optimizer, params, grad_stream(params, steps=2))
    fresh = snsm.AdamSNSM(make_params(dtype=torch.float16), rank=2, projector="uniform")
    fresh.load_state_dict(optimizer.state_dict())
    for old, new in zip(optimizer.state.values(), fresh.state.values()):
        assert {k: v.dtype for k, v in old.items()} == {k: v.dtype for k, v in new.items()}
    assert any(v.dtype == torch.float32 and k == "accumulator"
               for state in fresh.state.values() for k, v in state.items())
    assert any(v.dtype == torch.int64 for state in fresh.state.values() for v in state.values())
