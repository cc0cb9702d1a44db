"""8-bit optimizer states (state_precision="8bit"): the codes' error bounds, the layout and its
estimate, the three paths, state dicts, sharding, and runs that track full precision.

Tolerances come from the codes (snsm.rules.quantize): the signed linear code is within half a
step, s/254, of each value (s the block's absmax); the unsigned dynamic code is within
(rho - 1)/2 of each value relative, rho = 2^(32/254), for values >= 2^-32 s."""

from __future__ import annotations

import io
import math

import pytest
import torch

import snsm
from problems import clone_params, grad_stream, make_params, quadratic, run
from snsm_workbench.measure.memory import memory_rows
from snsm.optim.plan import GroupHParams, state_layout
from snsm.optim.sharding import ShardSpec
from snsm.rules.quantize import (BLOCK, DYNAMIC_EXPONENT, dequantize, dynamic_code, quantize_,
                                 scale_shape)
from problems import TinyLM

RHO = 2 ** (DYNAMIC_EXPONENT / 254)
FLOAT_SLACK = 1e-6  # float32 rounding of the scale and division, relative to the bound
SHAPES = [(), (7,), (3, 600), (2, 3, 100), (0, 5), (4, 256), (1, 513)]
EIGHT_BIT = [  # every named optimizer that takes state_precision, with the rules it exercises
    ("adamw", {}), ("adamw_sn", {}), ("adamw_snsm", {"rank": 3, "projector": "svd"}),
    ("adamw_snsm", {"rank": 3, "projector": "uniform", "on_refresh": "project"}),
    ("adagrad", {}), ("adagrad_sn", {}), ("adagrad_snsm", {"rank": 3}), ("rmsprop_sn", {}),
    ("sgd_sm", {"rank": 3}),
]


def _roundtrip(x: torch.Tensor, signed: bool):
    codes = torch.zeros(x.shape, dtype=torch.uint8)
    scale = torch.full(scale_shape(tuple(x.shape)), float("nan"))
    quantize_(codes, scale, x, signed)
    return codes, scale, dequantize(codes, scale, signed, torch.float32)


def _per_element(scale: torch.Tensor, shape) -> torch.Tensor:
    rows = scale.shape[0]
    cols = math.prod(shape) // rows if rows else 0
    return scale.repeat_interleave(BLOCK, dim=1)[:, :cols].reshape(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_signed_code_is_within_half_a_step_of_the_block_absmax(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 3
    codes, scale, back = _roundtrip(x, signed=True)
    assert codes.dtype == torch.uint8 and codes.shape == x.shape
    rows, cols = (x.shape[0], math.prod(x.shape[1:])) if x.dim() >= 2 else (1, x.numel())
    assert scale.shape == (rows, -(-cols // BLOCK))
    s = _per_element(scale, x.shape)
    if x.numel():
        assert torch.equal(s.abs().amax(), x.abs().amax())  # the scale is the absmax itself
    assert ((x - back).abs() <= s / 254 * (1 + FLOAT_SLACK)).all()
    zeros = _roundtrip(torch.zeros(shape), signed=True)
    assert not zeros[0].any() and not zeros[1].any() and not zeros[2].any()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unsigned_dynamic_code_is_within_a_relative_half_step(shape):
    gen = torch.Generator().manual_seed(1)
    magnitude = 10.0 ** (-12 * torch.rand(shape, generator=gen))  # 12 decades below the max
    v = torch.rand(shape, generator=gen) * magnitude
    codes, scale, back = _roundtrip(v, signed=False)
    s = _per_element(scale, v.shape)
    large = v >= 2.0**-DYNAMIC_EXPONENT * s
    bound = torch.where(large, v * (RHO - 1) / 2, 2.0 ** -(DYNAMIC_EXPONENT + 1) * s)
    assert ((v - back).abs() <= bound * (1 + FLOAT_SLACK) + 1e-45).all()
    assert (back >= 0).all()


def test_dynamic_code_has_more_resolution_near_zero():
    code = dynamic_code()
    gaps = code.diff()
    # code 0 is 0, then a geometric grid: the gaps between nonzero codes grow with the value
    assert code[0] == 0 and code[-1] == 1 and (gaps > 0).all() and (gaps[2:] > gaps[1:-1]).all()
    torch.testing.assert_close(code[2:] / code[1:-1], torch.full((254,), RHO))


def test_blocks_never_straddle_rows_so_row_pieces_quantize_as_the_whole():
    x = torch.randn(11, 700, generator=torch.Generator().manual_seed(2))
    codes, scale, _ = _roundtrip(x, signed=True)
    for start, stop in [(0, 6), (6, 11), (3, 4)]:
        piece_codes, piece_scale, _ = _roundtrip(x[start:stop], signed=True)
        assert torch.equal(piece_codes, codes[start:stop])
        assert torch.equal(piece_scale, scale[start:stop])


def _stepped(name, hparams, **kwargs):
    model = TinyLM()
    optimizer = snsm.create_optimizer(model, name, **hparams, **kwargs)
    gen = torch.Generator().manual_seed(0)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=gen)
    optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("name,hparams", EIGHT_BIT, ids=lambda c: c if isinstance(c, str)
                         else ",".join(f"{k}={v}" for k, v in c.items()))
def test_estimate_equals_measured_and_momentum_and_v_are_codes(name, hparams):
    model, optimizer = _stepped(name, {**hparams, "state_precision": "8bit"})
    measured = snsm.state_bytes(optimizer)
    assert measured == snsm.estimate_state_bytes(model, name, state_precision="8bit", **hparams)
    assert measured < snsm.estimate_state_bytes(model, name, **hparams)
    for group in optimizer.param_groups:
        hp = GroupHParams.from_group(group)
        for param in group["params"]:
            state, plan = optimizer.state[param], hp.plan(tuple(param.shape))
            assert plan.quantized == (param.dim() >= 2)  # biases and norms stay full
            if not plan.quantized:
                assert all(v.dtype != torch.uint8 for v in state.values())
                continue
            if plan.momentum != "none":
                assert state["momentum"].dtype == torch.uint8
                assert state["momentum_scale"].dtype == torch.float32
            if plan.partition is not None:
                coordinate = plan.partition.per_coordinate
                assert (state["accumulator"].dtype == torch.uint8) == coordinate
                assert ("accumulator_scale" in state) == coordinate


def test_llama_1b_adamw_snsm_8bit_state_is_under_9_percent_of_adamw_bf16():
    rows = {row["optimizer"]: row for row in
            memory_rows("llama-1b", torch.bfloat16, 512, False, state_precision="8bit")}
    full = memory_rows("llama-1b", torch.bfloat16, 512, False)
    assert next(r for r in full if r["optimizer"] == "adamw_snsm")["pct_of_adamw"] == 16.8
    assert rows["adamw_snsm"]["pct_of_adamw"] <= 9.0
    # AdamW: m and v at 1 byte + 4 bytes per 256 elements each, against 2 bytes in bf16
    assert rows["adamw"]["pct_of_adamw"] == pytest.approx(100 * (1 + 4 / 256) / 2, abs=0.2)


@pytest.mark.parametrize("name,hparams", EIGHT_BIT, ids=lambda c: c if isinstance(c, str)
                         else ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_foreach_equals_single_tensor_bit_for_bit(name, hparams, dtype):
    (single, opt_s), (multi, opt_m) = _foreach_runs(name, hparams, dtype, "8bit")
    for a, b in zip(single, multi):
        assert torch.equal(a, b)
        assert opt_s.state[a].keys() == opt_m.state[b].keys()
        assert all(torch.equal(opt_s.state[a][k], opt_m.state[b][k]) for k in opt_s.state[a])


def _foreach_runs(name, hparams, dtype, precision):
    """(single-tensor, foreach) runs of 7 steps with weight decay: (params, optimizer) each."""
    cls = snsm.get_optimizer_class(name)
    params = make_params(dtype=dtype)
    grads = grad_stream(params, steps=7)
    kwargs = {**hparams, "update_gap": 3} if "update_gap" in cls.options else hparams
    results = []
    for foreach in (False, True):
        copies = clone_params(params)
        optimizer = cls(copies, state_precision=precision, foreach=foreach, weight_decay=0.1,
                        **kwargs)
        run(optimizer, copies, grads)
        results.append((copies, optimizer))
    return results[0], results[1]


@pytest.mark.parametrize("name,hparams,lr", [("adamw", {}, 5e-2),
                                             ("adamw_snsm", {"rank": 2, "update_gap": 50}, 1e-1),
                                             ("adagrad", {}, 2e-1)])
def test_8bit_run_tracks_full_precision_on_the_quadratic(name, hparams, lr):
    """Per step, m is stored within 1/254 of its block absmax and v within 4.6% (so sqrt(v)
    within 2.3%): the update differs from full precision's by a few percent at most, and on a
    strongly convex quadratic such errors do not compound. Fixed before running: the 8-bit
    endpoint within 5% of the distance full precision travelled, its loss within 5% of the
    loss drop."""
    ends = {}
    for precision in ("full", "8bit"):
        params, loss_fn = quadratic()
        start = [p.detach().clone() for p in params]
        first = float(loss_fn().detach())
        optimizer = snsm.get_optimizer_class(name)(params, lr=lr, state_precision=precision,
                                                   **hparams)
        for _ in range(150):
            optimizer.zero_grad()
            loss_fn().backward()
            optimizer.step()
        ends[precision] = ([p.detach().clone() for p in params], float(loss_fn().detach()))
    (full, full_loss), (eight, eight_loss) = ends["full"], ends["8bit"]
    travelled = math.sqrt(sum(float((f - s).square().sum()) for f, s in zip(full, start)))
    apart = math.sqrt(sum(float((e - f).square().sum()) for e, f in zip(eight, full)))
    assert 0 < apart <= 0.05 * travelled
    assert eight_loss <= full_loss + 0.05 * (first - full_loss)


def test_state_dict_loads_with_weights_only_and_refuses_the_other_precision():
    params = make_params()
    optimizer = snsm.AdamW(params, state_precision="8bit")
    run(optimizer, params, grad_stream(params, steps=2))
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    same = snsm.AdamW(clone_params(params), state_precision="8bit")
    same.load_state_dict(saved)
    assert all(v.dtype == (torch.uint8 if p.dim() >= 2 else torch.float32)
               for p, s in same.state.items() for k, v in s.items()
               if k in ("momentum", "accumulator"))
    with pytest.raises(ValueError, match="state_precision='8bit'.*state_precision='full'"):
        snsm.AdamW(clone_params(params)).load_state_dict(saved)


def test_state_precision_is_validated_and_per_group():
    params = make_params()
    with pytest.raises(ValueError, match="state_precision.*'4bit'"):
        snsm.AdamW(params, state_precision="4bit")
    with pytest.raises(TypeError, match="state_precision"):
        snsm.AdaGradNorm(params, state_precision="8bit")
    assert "state_precision" in snsm.AdamSNSM.options and "state_precision" in snsm.SNSM.options
    optimizer = snsm.AdamW([{"params": params[:2], "state_precision": "8bit"},
                            {"params": params[2:]}])
    run(optimizer, params, grad_stream(params, steps=1))
    assert optimizer.state[params[0]]["momentum"].dtype == torch.uint8
    assert optimizer.state[params[2]]["momentum"].dtype == torch.float32


@pytest.mark.parametrize("projector", ["svd", "uniform"])
@pytest.mark.parametrize("shape", [(17, 12), (11, 17), (5, 3, 2), (13,)], ids=str)
@pytest.mark.parametrize("world", [2, 3])
def test_shards_hold_their_piece_of_the_single_process_codes_and_scales(projector, shape, world):
    """Each rank's 8-bit codes and scales, quantized from its piece of a state, are that
    piece of the one-process codes and scales (blocks never straddle the split), and the
    scales are split like their codes."""
    hp = GroupHParams.from_group(snsm.AdamSNSM([torch.zeros(1)], rank=4, projector=projector,
                                               state_precision="8bit").param_groups[0])
    whole = state_layout(shape, torch.float32, hp)
    assert ("momentum_scale" in whole) == (len(shape) >= 2)  # 1-D: full precision
    gen = torch.Generator().manual_seed(3)
    values = {key: torch.randn(whole[key][0], generator=gen)
              for key in ("momentum", "accumulator") if key + "_scale" in whole}
    quantized = {}
    for key, value in values.items():
        codes = torch.zeros(whole[key][0], dtype=torch.uint8)
        scale = torch.zeros(whole[key + "_scale"][0])
        quantize_(codes, scale, value.abs() if key == "accumulator" else value, True)
        quantized[key] = (codes, scale)
    for rank in range(world):
        spec = ShardSpec.for_shard(shape, rank, world)
        plan, layout = spec.plan(hp), spec.state_layout(torch.float32, hp)
        splits = spec.state_splits(plan)
        for key, (codes, scale) in quantized.items():
            dim, length = splits[key]
            assert splits[key + "_scale"] == (dim, length)
            start, stop = spec.piece(length)
            piece = values[key].narrow(dim, start, stop - start)
            local_codes = torch.zeros(layout[key][0], dtype=torch.uint8)
            local_scale = torch.zeros(layout[key + "_scale"][0])
            quantize_(local_codes, local_scale, piece.abs() if key == "accumulator" else piece,
                      True)
            assert torch.equal(local_codes, codes.narrow(dim, start, stop - start)), key
            assert torch.equal(local_scale, scale.narrow(dim, start, stop - start)), key


@pytest.mark.parametrize("name,hparams", [("adamw", {"weight_decay": 0.1}),
                                          ("adamw_snsm", {"projector": "uniform", "rank": 3,
                                                          "update_gap": 2,
                                                          "on_refresh": "project"})])
def test_compiled_8bit_step_equals_eager(name, hparams):
    """The compiled graph quantizes with the same ops; inductor's float32 reordering can only
    move a value across a rounding boundary at a tie, so states agree to one code step and
    the parameters to the compiled path's usual float32 tolerance."""
    from problems import train_scheduled as train

    hparams = {**hparams, "state_precision": "8bit"}
    eager_model, eager = train(name, hparams, "cpu", compile=False)
    compiled_model, compiled = train(name, hparams, "cpu", compile=True)
    for p_eager, p_compiled in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(p_compiled, p_eager, rtol=1e-5, atol=1e-6)
        state_e, state_c = eager.state[p_eager], compiled.state[p_compiled]
        assert state_e.keys() == state_c.keys()
        for key in ("momentum", "accumulator"):
            if key + "_scale" not in state_e:
                continue
            signed = key == "momentum"
            a = dequantize(state_e[key], state_e[key + "_scale"], signed, torch.float32)
            b = dequantize(state_c[key], state_c[key + "_scale"], signed, torch.float32)
            step = _per_element(state_e[key + "_scale"], a.shape) * (1 / 127 if signed else
                                                                       RHO - 1)
            assert ((a - b).abs() <= step * (1 + 1e-4) + 1e-12).all(), key


@pytest.mark.parametrize("shape,axis", [((3000, 700), 0), ((300, 5000), 1)])
def test_pieces_bound_the_temporaries_without_changing_a_code(monkeypatch, shape, axis):
    from snsm.rules import quantize as q

    value = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    results = []
    for piece in (1 << 30, 1 << 16):  # one piece, then many
        monkeypatch.setattr(q, "PIECE", piece)
        codes = torch.empty(shape, dtype=torch.uint8)
        scale = torch.empty(q.scale_shape(shape, axis))
        q.quantize_(codes, scale, value, signed=True)
        results.append((codes, scale, q.dequantize(codes, scale, True, torch.float32)))
    for a, b in zip(*results):
        assert torch.equal(a, b)
