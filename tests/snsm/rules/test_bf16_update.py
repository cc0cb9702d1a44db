"""bf16_update (issue 14): the Kahan compensation's accuracy against a float32 master and
nearest rounding, its state (state_dict, weights_only, exact resume, structure, memory,
sharding), and the foreach path equal to the single-tensor one for bf16 parameters under
every rule, momentum and accumulator."""

from __future__ import annotations

import io

import pytest
import torch

import snsm
from problems import clone_params, grad_stream, make_params, run
from snsm_workbench.measure.memory import memory_rows
from snsm_workbench.measure.models import llama_skeleton
from snsm.optim.plan import GroupHParams
from snsm.optim.sharding import ShardSpec

from problems import TinyLM

U32 = 2.0**-24  # float32 unit roundoff


def _sgd(params, rule: str) -> snsm.SNSM:
    """Plain SGD (no momentum, D = 1): each step adds exactly -lr g to the weight."""
    return snsm.SNSM(params, lr=1e-4, momentum="none", accumulator="none", bf16_update=rule)


def test_kahan_tracks_a_float32_master_where_nearest_stalls():
    """1000 steps of -1e-4 g, g in [0.5, 1.5], from weights in [1.5, 2): every update is below
    half a bf16 spacing (s = 2^-7 in [1, 2)), so nearest rounding never moves a weight, while
    the float32 run moves each by 0.05 to 0.15. Kahan (snsm.rules.bf16), bound derived before
    running: |p_n - x_n| <= s/2 + n (2^-10 s + 2 u |w|) (two float32 roundings a step: p + c
    and the update), plus the float32 run's own n u |x| (one rounding a step), |w|, |x| < 2."""
    gen = torch.Generator().manual_seed(0)
    start = (1.5 + 0.5 * torch.rand(1024, generator=gen)).bfloat16()
    grad = (0.5 + torch.rand(1024, generator=gen)).bfloat16()
    steps, spacing = 1000, 2.0**-7
    ends = {}
    for rule, dtype in (("reference", torch.float32), ("nearest", torch.bfloat16),
                        ("kahan", torch.bfloat16)):
        param = start.to(dtype, copy=True).requires_grad_()
        optimizer = _sgd([param], "nearest" if rule == "reference" else rule)
        for _ in range(steps):
            param.grad = grad.to(dtype)
            optimizer.step()
        ends[rule] = param.detach().float()
    moved = (ends["reference"] - start.float()).abs()
    assert moved.min() >= 0.05 * (1 - U32) - steps * U32 * 2  # lr in float32, its roundings
    assert torch.equal(ends["nearest"], start.float())  # stalled
    bound = spacing / 2 + steps * (2.0**-10 * spacing + 2 * U32 * 2) + steps * U32 * 2
    assert (ends["kahan"] - ends["reference"]).abs().max() <= bound
    assert bound < 0.25 * moved.min()  # the bound is tight enough to say something


def _train(params, steps_from: int, steps_to: int, optimizer):
    grads = grad_stream(params, steps=steps_to)[steps_from:]
    run(optimizer, params, grads)


CASES = [("adamw", {}), ("adamw_snsm", {"rank": 2, "update_gap": 2}),
         ("adagrad_sn", {"state_precision": "8bit"})]


@pytest.mark.parametrize("name,hparams", CASES, ids=[c[0] for c in CASES])
def test_kahan_state_loads_with_weights_only_and_resumes_exactly(name, hparams):
    cls = snsm.get_optimizer_class(name)
    whole = make_params(dtype=torch.bfloat16)
    uninterrupted = cls(whole, bf16_update="kahan", weight_decay=0.1, **hparams)
    _train(whole, 0, 6, uninterrupted)

    first = make_params(dtype=torch.bfloat16)
    optimizer = cls(first, bf16_update="kahan", weight_decay=0.1, **hparams)
    _train(first, 0, 3, optimizer)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = clone_params(first)
    again = cls(resumed, bf16_update="kahan", weight_decay=0.1, **hparams)
    again.load_state_dict(saved)
    assert all(again.state[p]["compensation"].dtype == torch.bfloat16 for p in resumed)
    _train(resumed, 3, 6, again)
    for a, b in zip(whole, resumed):
        assert torch.equal(a, b)
        assert uninterrupted.state[a].keys() == again.state[b].keys()
        assert all(torch.equal(uninterrupted.state[a][k], again.state[b][k])
                   for k in uninterrupted.state[a])


def test_a_different_compensation_is_refused_and_the_other_rules_load():
    params = make_params(dtype=torch.bfloat16)
    kahan = snsm.AdamW(params, bf16_update="kahan")
    _train(params, 0, 2, kahan)
    with pytest.raises(ValueError, match="saved with bf16_update='kahan', this optimizer has "
                                         "bf16_update='stochastic'"):
        snsm.AdamW(params).load_state_dict(kahan.state_dict())
    stochastic = snsm.AdamW(params)
    _train(params, 0, 2, stochastic)
    with pytest.raises(ValueError, match="bf16_update='stochastic', this optimizer has "
                                         "bf16_update='kahan'"):
        snsm.AdamW(params, bf16_update="kahan").load_state_dict(stochastic.state_dict())
    snsm.AdamW(params, bf16_update="nearest").load_state_dict(stochastic.state_dict())
    fp32 = make_params()  # no bf16 parameter: no compensation either way
    saved = snsm.AdamW(fp32, bf16_update="kahan")
    _train(fp32, 0, 1, saved)
    snsm.AdamW(fp32).load_state_dict(saved.state_dict())


@pytest.mark.parametrize("name", ["adamw", "adamw_snsm", "sgd_sm"])
def test_compensation_is_counted_live_and_in_the_estimate(name):
    """2 bytes per bf16 parameter element, in state_bytes and estimate_state_bytes alike."""
    model = TinyLM().to(torch.bfloat16)
    hparams = {"rank": 3} if "sm" in name else {}
    optimizer = snsm.create_optimizer(model, name, bf16_update="kahan", **hparams)
    gen = torch.Generator().manual_seed(0)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=gen).to(p.dtype)
    optimizer.step()
    estimated = snsm.estimate_state_bytes(model, name, bf16_update="kahan", **hparams)
    assert snsm.state_bytes(optimizer) == estimated
    numel = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert estimated - snsm.estimate_state_bytes(model, name, **hparams) == 2 * numel
    assert snsm.estimate_state_bytes(model, name, dtype=torch.float32, bf16_update="kahan",
                                     **hparams) == snsm.estimate_state_bytes(
        model, name, dtype=torch.float32, **hparams)


def test_a_shard_holds_its_rows_of_the_compensation():
    hp = GroupHParams.from_group(snsm.AdamW([torch.zeros(1)], bf16_update="kahan")
                                 .param_groups[0])
    shapes = []
    for rank in range(3):
        spec = ShardSpec.for_shard((7, 4), rank, 3)
        layout = spec.state_layout(torch.bfloat16, hp)
        assert layout["compensation"] == (spec.local_shape, torch.bfloat16)
        assert spec.state_splits(spec.plan(hp))["compensation"] == (0, 7)
        shapes.append(layout["compensation"][0])
    assert sum(s[0] for s in shapes) == 7


GRID = [(momentum, accumulator, subset)
        for momentum in ("ema", "subspace", "none") for accumulator in ("ema", "sum")
        for subset in ("heuristic", 1)]


@pytest.mark.parametrize("rule", ["nearest", "stochastic", "kahan"])
@pytest.mark.parametrize("momentum,accumulator,subset", GRID,
                         ids=["-".join(map(str, g)) for g in GRID])
def test_foreach_equals_single_tensor_for_bf16_parameters(momentum, accumulator, subset, rule):
    """bf16 parameters, every momentum x accumulator x partition x rule, bit for bit. lr 0.1
    with weight decay 0.1 (a decay factor of 0.99, which bf16 cannot hold) and beta2 = 0.95
    (a bf16 EMA accumulator): the cases where torch._foreach_mul_ with a Python number used
    to differ from Tensor.mul_ (the AdaGrad family's large lrs showed it first)."""
    params = make_params(dtype=torch.bfloat16)
    grads = grad_stream(params, steps=7)
    results = []
    for foreach in (False, True):
        copies = clone_params(params)
        optimizer = snsm.SNSM(copies, lr=0.1, betas=(0.9, 0.95), weight_decay=0.1,
                              momentum=momentum, accumulator=accumulator, subset_size=subset,
                              bias_correction=accumulator == "ema", rank=2, update_gap=3,
                              foreach=foreach, bf16_update=rule)
        run(optimizer, copies, grads)
        results.append((copies, optimizer))
    (single, opt_s), (multi, opt_m) = results
    for a, b in zip(single, multi):
        assert torch.equal(a, b)
        assert all(torch.equal(opt_s.state[a][k], opt_m.state[b][k]) for k in opt_s.state[a])
    assert all(torch.isfinite(p.detach().float()).all() for p in single)


def test_snsm_memory_counts_the_compensation_at_llama_1b():
    """snsm memory --bf16-update kahan: 2 bytes more per weight for each of ours."""
    numel = sum(p.numel() for p in llama_skeleton("llama-1b").parameters())
    kahan = {r["optimizer"]: r["bytes"]
             for r in memory_rows("llama-1b", torch.bfloat16, 512, False, bf16_update="kahan")}
    plain = {r["optimizer"]: r["bytes"] for r in memory_rows("llama-1b", torch.bfloat16, 512,
                                                             False)}
    assert all(kahan[name] - plain[name] == 2 * numel for name in snsm.list_optimizers())


@pytest.mark.parametrize("rule", ["stochastic", "kahan"])
def test_foreach_in_pieces_of_float32_copies_equals_single_tensor(rule, monkeypatch):
    """The foreach path copies bf16 parameters to float32 a piece at a time (bounded memory):
    pieces of 50 elements here, several parameters each or one alone, change nothing."""
    monkeypatch.setattr("snsm.optim.foreach.MASTER_PIECE", 50)
    params = make_params(dtype=torch.bfloat16)
    grads = grad_stream(params, steps=4)
    results = []
    for foreach in (False, True):
        copies = clone_params(params)
        run(snsm.AdamSNSM(copies, rank=2, update_gap=2, weight_decay=0.1, foreach=foreach,
                          bf16_update=rule), copies, grads)
        results.append(copies)
    assert all(torch.equal(a, b) for a, b in zip(*results))
