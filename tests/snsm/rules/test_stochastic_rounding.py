"""bf16_update="stochastic" (the default): bf16
parameters are updated in float32 and written back with unbiased stochastic rounding, from
seeded generators (never the global RNG). bf16_update="kahan" shares the paths tested here;
its accuracy and state are in test_bf16_update.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import snsm
from problems import clone_params, grad_stream, make_params, run
from snsm.rules.bf16 import rounding_bits, stochastic_round_to_bf16

ULP_BELOW_ONE = 2.0**-8  # bf16 spacing in [0.5, 1)


def test_rounding_picks_a_neighbour_with_the_right_probability():
    """x = a + f (b - a) between bf16 neighbours a < b becomes b with probability f: over n
    draws the mean is x within 5 standard deviations, (b - a) sqrt(f (1 - f) / n)."""
    n = 1 << 16
    a, b = 0.5, 0.5 + 2.0**-8
    for f in (0.1, 0.25, 0.5, 0.9):
        x = torch.full((n,), a + f * (b - a))
        rounded = stochastic_round_to_bf16(x, rounding_bits((n,), torch.device("cpu"), 7).whole())
        assert set(rounded.float().unique().tolist()) <= {a, b}
        sigma = (b - a) * math.sqrt(f * (1 - f) / n)
        assert abs(rounded.float().mean().item() - x[0].item()) < 5 * sigma
    exact = torch.tensor([1.0, -2.5, 0.0, float("inf")])
    bits = rounding_bits((4,), torch.device("cpu"), 1).whole()
    assert torch.equal(stochastic_round_to_bf16(exact, bits).float(), exact)


def _descend(stochastic: bool, steps: int, seed: int = 0):
    param = torch.ones(4096, dtype=torch.bfloat16, requires_grad=True)
    # AdamW does not expose the seed as an argument; the group key sets it
    optimizer = snsm.AdamW([{"params": [param], "seed": seed}], lr=2.0**-10,
                           bf16_update="stochastic" if stochastic else "nearest")
    for _ in range(steps):
        param.grad = torch.ones_like(param)
        optimizer.step()
    return param.detach().float()


def test_an_update_nearest_rounding_loses_survives_on_average():
    """AdamW on a constant gradient steps by lr (m_hat / sqrt(v_hat) = 1) each step; lr is a
    quarter of the bf16 spacing below 1, so nearest rounding returns 1.0 every step. With
    stochastic rounding each step is unbiased: the mean over 4096 coordinates after 10 steps
    is 1 - 10 lr within 5 standard deviations (each step adds a rounding error of at most one
    spacing, independent across coordinates: sigma <= spacing sqrt(10 / 4096))."""
    steps, lr = 10, 2.0**-10
    assert torch.equal(_descend(False, steps), torch.ones(4096))
    got = _descend(True, steps)
    sigma = ULP_BELOW_ONE * math.sqrt(steps / 4096)
    assert abs(got.mean().item() - (1 - steps * lr)) < 5 * sigma
    assert (got < 1).any() and (got <= 1).all()


def test_seeded_and_leaves_the_global_rng_alone():
    rng = torch.get_rng_state()
    first, again = _descend(True, 3), _descend(True, 3)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(first, again)
    assert not torch.equal(first, _descend(True, 3, seed=1))


def test_other_dtypes_are_unaffected():
    params = make_params()
    grads = grad_stream(params, steps=4)
    a, b = clone_params(params), clone_params(params)
    run(snsm.AdamW(a), a, grads)
    for rule in ("stochastic", "kahan", "nearest"):
        b = clone_params(params)
        optimizer = snsm.AdamW(b, bf16_update=rule)
        run(optimizer, b, grads)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert all("compensation" not in state for state in optimizer.state.values())


CASES = [("adamw", {}), ("adamw_sn", {"state_precision": "8bit"}),
         ("adamw_snsm", {"rank": 2, "update_gap": 3, "projector": "svd"}),
         ("sgd_sm", {"rank": 2, "update_gap": 3})]


@pytest.mark.parametrize("rule", ["stochastic", "kahan"])
@pytest.mark.parametrize("name,hparams", CASES, ids=[c[0] for c in CASES])
def test_foreach_equals_single_tensor_bit_for_bit(name, hparams, rule):
    params = make_params(dtype=torch.bfloat16)
    grads = grad_stream(params, steps=6)
    results = []
    for foreach in (False, True):
        copies = clone_params(params)
        optimizer = snsm.get_optimizer_class(name)(copies, foreach=foreach, weight_decay=0.1,
                                                   bf16_update=rule, **hparams)
        run(optimizer, copies, grads)
        results.append((copies, optimizer))
    (single, opt_s), (multi, opt_m) = results
    for a, b in zip(single, multi):
        assert torch.equal(a, b)
        assert opt_s.state[a].keys() == opt_m.state[b].keys()
        assert all(torch.equal(opt_s.state[a][k], opt_m.state[b][k]) for k in opt_s.state[a])
    plain = clone_params(params)
    run(snsm.get_optimizer_class(name)(plain, weight_decay=0.1, bf16_update="nearest",
                                       **hparams), plain, grads)
    assert any(not torch.equal(a, b) for a, b in zip(single, plain))  # it did something


@pytest.mark.parametrize("rule", ["stochastic", "kahan"])
@pytest.mark.parametrize("name,hparams", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_steps_inside_the_backward_pass_equal_step(name, hparams, rule):
    def train(in_backward: bool):
        model = nn.ParameterList([nn.Parameter(p.detach())
                                  for p in make_params(dtype=torch.bfloat16)])
        optimizer = snsm.get_optimizer_class(name)(list(model), bf16_update=rule, **hparams)
        if in_backward:
            snsm.step_in_backward(model, optimizer)
        gen = torch.Generator().manual_seed(5)
        for _ in range(4):
            loss = sum((p.float() - torch.randn(p.shape, generator=gen)).square().sum()
                       for p in model)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        return list(model)

    for a, b in zip(train(False), train(True)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("rule", ["stochastic", "kahan"])
def test_compiled_step_matches_eager_to_one_spacing(rule):
    """The compiled update gets the same bits; inductor's float32 reordering can move the
    float32 result by a rounding, which can flip a stochastic rounding (or the nearest
    rounding of a Kahan split): one bf16 spacing of the value at most, per step (4 steps)."""
    def train(compile: bool):
        params = make_params(dtype=torch.bfloat16, shapes=[(8, 6), (6, 10)])
        optimizer = snsm.AdamW(params, weight_decay=0.1, bf16_update=rule, compile=compile)
        run(optimizer, params, grad_stream(params, steps=4))
        return params

    for eager, compiled in zip(train(False), train(True)):
        spacing = eager.float().abs() * 2.0**-7 + 1e-30
        assert ((compiled.float() - eager.float()).abs() <= 4 * spacing).all()


def test_validated():
    with pytest.raises(ValueError, match="bf16_update.*'exact'"):
        snsm.AdamW(make_params(), bf16_update="exact")
    with pytest.raises(TypeError, match="stochastic_rounding"):  # the old alias is gone
        snsm.AdamW(make_params(), stochastic_rounding=True)
    for name in snsm.list_optimizers():
        options = snsm.get_optimizer_class(name).options
        assert "bf16_update" in options and "stochastic_rounding" not in options, name


def test_every_path_rounds_a_tensor_of_several_chunks_alike():
    """The bits of an element depend on its row-major position only (chunk c of
    ROUNDING_CHUNK elements from its own seed): single-tensor, foreach and in-backward
    updates of a parameter spanning chunk boundaries agree bit for bit, and so does a
    non-contiguous parameter (a transposed view) with the same values."""
    from snsm.rules.bf16 import ROUNDING_CHUNK

    shape = (ROUNDING_CHUNK // 500 + 7, 1000)  # two chunks and part of a third
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(shape, generator=gen).bfloat16()
    grads = [torch.randn(shape, generator=gen).bfloat16() for _ in range(2)]

    def train(foreach: bool, in_backward: bool = False, transposed: bool = False):
        data = start.t().contiguous().t() if transposed else start.clone()
        param = nn.Parameter(data)
        optimizer = snsm.AdamW([param], lr=1e-2, foreach=foreach)
        if in_backward:
            snsm.step_in_backward(nn.ParameterList([param]), optimizer)
        for grad in grads:
            if in_backward:
                (param.float() * grad.float()).sum().backward()
            else:
                param.grad = grad.clone()
            optimizer.step()
            optimizer.zero_grad()
        return param.detach()

    single = train(False)
    assert not torch.equal(single, start)
    assert torch.equal(single, train(True))
    assert torch.equal(single, train(False, in_backward=True))
    transposed = train(False, transposed=True)
    assert not transposed.is_contiguous() and torch.equal(single, transposed)


@pytest.mark.parametrize("rows, world", [((1 << 20) // 96 + 7, 2), (13, 3), (1, 2)])
def test_an_fsdp2_shard_rounds_with_its_rows_bits_of_the_whole(rows, world):
    """Each shard's bits are the whole parameter's at its rows (they used to start at element 0
    of every shard, so 2 ranks rounded unlike one process); the first case spans a chunk
    boundary, the last leaves a rank with no row."""
    from snsm.optim.plan import GroupHParams
    from snsm.optim.sharding import ShardSpec
    from snsm.optim.update import stochastic_bits

    shape = (rows, 96)
    hp = GroupHParams.from_group({**snsm.AdamW([torch.zeros(1)]).defaults, "use_snsm": False})
    whole = stochastic_bits(torch.zeros(shape, dtype=torch.bfloat16), hp, 3, 5).whole()
    parts = []
    for index in range(world):
        shard = ShardSpec.for_shard(shape, index, world)
        local = torch.zeros((shard.stop - shard.start, 96), dtype=torch.bfloat16)
        parts.append(stochastic_bits(local, hp, 3, 5, shard).whole())
    assert torch.equal(torch.cat(parts), whole)
