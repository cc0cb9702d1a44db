"""The Muon family (snsm.Muon, MuonSN, MuonSM, MuonSNSM): equality with torch.optim.Muon, the
orthogonalized update's singular values, routing and the auxiliary group, exact resume across
a projector refresh, 8-bit and bf16 paths, and bad inputs. The contract tests of optim_db (the
foreach path, state dicts, in-backward steps, copies) run every entry of the family too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snsm
from problems import clone_params, grad_stream, make_params, run
from snsm.memory import estimate_state_bytes

MATRICES = [(16, 8), (8, 24), (12, 12), (6, 2, 5)]


def _matrices(dtype=torch.float32, shapes=MATRICES):
    return make_params(dtype=dtype, shapes=shapes, seed=3)


class _Model(nn.Module):
    """An embedding, two hidden Linears with biases, a norm and an untied lm_head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.up = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.down = nn.Linear(16, 8)
        self.lm_head = nn.Linear(8, 11, bias=False)


# torch.optim.Muon takes 2-D parameters only.
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("shape_scale", ["original", "match_rms_adamw"])
def test_muon_equals_torch_muon_bitwise(nesterov, foreach, shape_scale):
    # fp32 parameters: both run the iteration in bf16 with the same operations, so every
    # step agrees bit for bit. With bf16 parameters and nesterov=False they would not:
    # torch's iteration normalizes its bf16 input in place (X.div_(norm) after X = G.bfloat16(),
    # a no-op copy for a bf16 G), so torch.optim.Muon divides its own momentum buffer by its
    # norm every step; ours (snsm.rules.orthogonalize.newton_schulz) leaves the momentum alone.
    shapes = MATRICES[:3]
    ours, theirs = _matrices(shapes=shapes), _matrices(shapes=shapes)
    optimizer = snsm.Muon(ours, lr=0.02, weight_decay=0.1, nesterov=nesterov,
                          shape_scale=shape_scale, foreach=foreach)
    reference = torch.optim.Muon(theirs, lr=0.02, weight_decay=0.1, nesterov=nesterov,
                                 adjust_lr_fn=shape_scale)
    assert len(optimizer.param_groups) == 1  # matrices only: no auxiliary group
    for grads in grad_stream(ours, steps=6):
        for a, b, g in zip(ours, theirs, grads):
            a.grad, b.grad = g.clone(), g.clone()
        optimizer.step()
        reference.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)
    for a, b in zip(ours, theirs):
        assert torch.equal(optimizer.state[a]["momentum"], reference.state[b]["momentum_buffer"])


def test_defaults_are_torch_muons():
    param = torch.zeros(4, 3, requires_grad=True)
    ours = snsm.Muon([param]).param_groups[0]
    theirs = torch.optim.Muon([param]).param_groups[0]
    assert (ours["lr"], ours["weight_decay"], ours["betas"][0], ours["nesterov"], ours["eps"],
            ours["ns_steps"], ours["ns_coefficients"], ours["shape_scale"]) == \
        (theirs["lr"], theirs["weight_decay"], theirs["momentum"], theirs["nesterov"],
         theirs["eps"], theirs["ns_steps"], theirs["ns_coefficients"], "original")


@pytest.mark.parametrize("ns_dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("shape", [(32, 16), (16, 48), (24, 24)])
def test_update_singular_values_inside_the_iterations_band(ns_dtype, shape):
    """One step from zero momentum, no Nesterov and no decay, lr 1: p - p' = scale * NS(g).
    The 5-step quintic maps every singular value of g / ||g||_F in [0.01, 1] into about
    [0.68, 1.13] (tests/snsm/rules/test_orthogonalize.py); bf16 rounding widens it a little."""
    param = torch.zeros(shape, requires_grad=True)
    generator = torch.Generator().manual_seed(5)
    r = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], r, generator=generator))
    v, _ = torch.linalg.qr(torch.randn(shape[1], r, generator=generator))
    grad = u @ torch.diag(torch.logspace(0, -1, r)) @ v.T  # condition number 10
    s = torch.linalg.svdvals(grad / grad.norm())
    assert s.min() > 0.01
    optimizer = snsm.Muon([param], lr=1.0, weight_decay=0.0, nesterov=False, ns_dtype=ns_dtype,
                          shape_scale="none")
    param.grad = grad
    optimizer.step()
    update = -param.detach() / (1 - 0.95)  # N = m = (1 - b1) g: NS is scale-invariant
    values = torch.linalg.svdvals(update * (1 - 0.95))
    assert 0.6 < values.min() and values.max() < 1.2


def test_routing_sends_the_head_and_vectors_to_the_auxiliary_group():
    model = _Model()
    optimizer = snsm.create_optimizer(model, "muon", plain={"lr": 1e-2})
    matrix, aux = optimizer.param_groups
    assert {id(p) for p in matrix["params"]} == {id(model.up.weight), id(model.down.weight)}
    assert {id(p) for p in aux["params"]} == {id(p) for p in model.parameters()} - \
        {id(model.up.weight), id(model.down.weight)}
    assert matrix["orthogonalize"] and matrix["nesterov"] and matrix["accumulator"] == "none"
    assert (aux["orthogonalize"], aux["nesterov"], aux["momentum"], aux["accumulator"],
            aux["betas"], aux["eps"], aux["lr"], aux["subset_size"]) == \
        (False, False, "ema", "ema", (0.9, 0.999), 1e-8, 1e-2, 1)
    # the AdamW auxiliary group is AdamW: equal to torch's with the same settings
    head = model.lm_head.weight
    twin = head.detach().clone().requires_grad_()
    reference = torch.optim.AdamW([twin], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    for step in range(3):
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.1 * (step + 1))
        twin.grad = head.grad.clone()
        optimizer.step()
        reference.step()
    torch.testing.assert_close(head, twin, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("aux,keys", [
    ("adamw", {"momentum": torch.float32, "accumulator": torch.float32}),
    ("adamw_8bit", {"momentum": torch.uint8, "accumulator": torch.uint8}),
    ("sn_8bit", {"momentum": torch.uint8, "accumulator": torch.float32}),
])
def test_auxiliary_rules_and_their_state(aux, keys):
    model = _Model()
    optimizer = snsm.create_optimizer(model, "muon", aux=aux)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    embed = optimizer.state[model.embed.weight]
    assert {k: embed[k].dtype for k in keys} == keys
    if aux == "sn_8bit":  # one second-moment value per row of the (11, 8) embedding
        assert embed["accumulator"].shape == (11, 1)
    assert optimizer.state[model.up.weight]["momentum"].dtype == torch.float32
    assert snsm.state_bytes(optimizer) == estimate_state_bytes(model, "muon", aux=aux)


def test_auxiliary_state_shrinks_in_order():
    model = _Model()
    sizes = [estimate_state_bytes(model, "muon", aux=aux)
             for aux in ("adamw", "adamw_8bit", "sn_8bit")]
    assert sizes[0] > sizes[1] > sizes[2]


def test_muon_sn_second_moment_and_equal_rows_at_the_first_step():
    param = torch.zeros(12, 20, requires_grad=True)
    optimizer = snsm.MuonSN([param], lr=1.0, weight_decay=0.0)
    param.grad = torch.randn(12, 20, generator=torch.Generator().manual_seed(2))
    optimizer.step()
    assert optimizer.state[param]["second_moment"].shape == (12, 1)
    rows = param.detach().norm(dim=1)
    torch.testing.assert_close(rows, rows.mean().expand(12), rtol=1e-5, atol=0)


@pytest.mark.parametrize("complement", ["gradient", "none"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_full_rank_subspace_momentum_is_muons(complement, nesterov):
    """With rank = min(m, n), an SVD basis and the momentum carried across refreshes,
    P^T P m = m: MuonSM is Muon up to float32 rounding, whatever the complement gets."""
    shapes = [(12, 6), (5, 9)]
    a, b = _matrices(shapes=shapes), _matrices(shapes=shapes)
    settings = dict(lr=0.05, nesterov=nesterov, ns_dtype="float32")
    subspace = snsm.MuonSM(a, rank=9, update_gap=2, complement=complement, **settings)
    full = snsm.Muon(b, **settings)
    grads = grad_stream(a, steps=5)
    run(subspace, a, grads)
    run(full, b, grads)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_dropping_the_complement_changes_a_low_rank_update():
    a, b = _matrices(), _matrices()
    grads = grad_stream(a, steps=3)
    run(snsm.MuonSM(a, rank=2, update_gap=2), a, grads)
    run(snsm.MuonSM(b, rank=2, update_gap=2, complement="none"), b, grads)
    assert not torch.equal(a[0], b[0])


@pytest.mark.parametrize("name", ["muon_sm", "muon_snsm"])
@pytest.mark.parametrize("precision", ["full", "8bit"])
@pytest.mark.parametrize("split", [3, 4])  # saved just before / just after the refresh of step 4
def test_resume_across_a_projector_refresh_is_bit_exact(name, precision, split, tmp_path):
    cls = snsm.get_optimizer_class(name)
    params = make_params()
    kwargs = dict(rank=2, update_gap=3, state_precision=precision)
    grads = grad_stream(params, steps=8)
    reference = clone_params(params)
    run(cls(reference, **kwargs), reference, grads)

    first = clone_params(params)
    optimizer = cls(first, **kwargs)
    run(optimizer, first, grads[:split])
    torch.save(optimizer.state_dict(), tmp_path / "state.pt")
    resumed = clone_params(first)
    optimizer = cls(resumed, **kwargs)
    optimizer.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    run(optimizer, resumed, grads[split:])
    for got, want in zip(resumed, reference):
        assert torch.equal(got, want)


def test_8bit_momentum_is_codes_and_tracks_full_precision():
    full, quantized = _matrices(), _matrices()
    grads = grad_stream(full, steps=5)
    run(snsm.Muon(full, lr=0.02, ns_dtype="float32"), full, grads)
    optimizer = snsm.Muon(quantized, lr=0.02, ns_dtype="float32", state_precision="8bit")
    run(optimizer, quantized, grads)
    state = optimizer.state[quantized[0]]
    assert state["momentum"].dtype == torch.uint8 and "momentum_scale" in state
    for a, b in zip(full, quantized):
        assert not torch.equal(a, b)
        torch.testing.assert_close(b, a, rtol=0, atol=0.02 * 5 * 0.1)


@pytest.mark.parametrize("bf16_update", ["stochastic", "kahan"])
@pytest.mark.parametrize("name", ["muon", "muon_snsm"])
def test_bf16_parameters_follow_the_float32_run(bf16_update, name):
    cls = snsm.get_optimizer_class(name)
    kwargs = dict(lr=0.05, ns_dtype="float32", **({"rank": 2} if name != "muon" else {}))
    half = _matrices(torch.bfloat16)
    full = [p.detach().float().requires_grad_() for p in half]  # the same starting weights
    grads = [[g.bfloat16() for g in step] for step in grad_stream(full, steps=6)]
    run(cls(full, **kwargs), full, [[g.float() for g in step] for step in grads])
    optimizer = cls(half, bf16_update=bf16_update, **kwargs)
    run(optimizer, half, grads)
    state = optimizer.state[half[0]]
    assert state["momentum"].dtype == torch.bfloat16
    if name == "muon_snsm":
        assert state["second_moment"].dtype == torch.float32
    assert ("compensation" in state) == (bf16_update == "kahan")
    for a, b, start in zip(full, half, _matrices(torch.bfloat16)):
        weight = b.float() + (optimizer.state[b]["compensation"].float()
                              if bf16_update == "kahan" else 0)
        assert (a - start.float()).abs().max() > 0.1  # it moved far more than the tolerance
        # within a few bf16 spacings (2^-8 relative) of the float32 run; the momentum is bf16
        torch.testing.assert_close(weight, a, rtol=2**-5, atol=2**-6)


def test_state_matches_the_estimate_for_every_variant():
    model = _Model()
    for name in ("muon", "muon_sn", "muon_sm", "muon_snsm"):
        optimizer = snsm.create_optimizer(model, name, **({"rank": 4} if "sm" in name else {}))
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        optimizer.step()
        assert snsm.state_bytes(optimizer) == estimate_state_bytes(
            model, name, **({"rank": 4} if "sm" in name else {})), name


@pytest.mark.parametrize("make,message", [
    (lambda p: snsm.Muon([{"params": [p[0], p[3]]}]), r"matrix rule.*shape \(7,\)"),
    (lambda p: snsm.Muon([{"params": [torch.zeros(0, 4, requires_grad=True)]}]),
     r"shape \(0, 4\)"),
    (lambda p: snsm.SNSM([p[3]], orthogonalize=True, accumulator="none"), r"shape \(7,\)"),
    (lambda p: snsm.SNSM([p[0]], orthogonalize=True), "accumulator='none'.*'ema'"),
    (lambda p: snsm.Muon(p, aux="adam"), "aux must be one of.*'adam'"),
    (lambda p: snsm.Muon(p, ns_steps=0), "ns_steps"),
    (lambda p: snsm.Muon(p, ns_coefficients=(1.0, 2.0)), "coefficients"),
    (lambda p: snsm.Muon(p, ns_coefficients=(1.0, float("nan"), 2.0)), "coefficient b"),
    (lambda p: snsm.Muon(p, ns_dtype="float16"), "ns_dtype.*float16"),
    (lambda p: snsm.Muon(p, shape_scale="sqrt"), "shape_scale.*sqrt"),
    (lambda p: snsm.MuonSN(p, normalize="rows"), "normalize.*rows"),
    (lambda p: snsm.MuonSM(p, complement="bufer"), "complement.*bufer"),
], ids=["1-D", "empty", "snsm-1-D", "accumulator", "aux", "ns_steps", "coefficients",
        "nan-coefficient", "ns_dtype", "shape_scale", "normalize", "complement"])
def test_bad_inputs_raise_one_clear_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())


@pytest.mark.parametrize("normalize,moment", [("row", (17, 1)), ("column", (1, 12))])
def test_fsdp2_shards_split_the_momentum_and_replicate_the_second_moment(normalize, moment):
    """(The 2-rank run against one process: tests/distributed/test_fsdp_equivalence.py.)"""
    from snsm.optim.plan import GroupHParams
    from snsm.optim.sharding import ShardSpec, needs_collectives

    hp = GroupHParams.from_group(snsm.MuonSN([torch.zeros(17, 12)],
                                             normalize=normalize).param_groups[0])
    shards = [ShardSpec.for_shard((17, 12), index, 2) for index in range(2)]
    layouts = [shard.state_layout(torch.float32, hp) for shard in shards]
    assert [layout["momentum"][0] for layout in layouts] == [(9, 12), (8, 12)]
    assert all(layout["second_moment"][0] == moment for layout in layouts)
    plan = shards[0].plan(hp)
    assert needs_collectives(plan) and plan.orthogonal.scale == (17 / 12) ** 0.5


def test_registry_specs():
    for name in ("muon", "muon_sn", "muon_sm", "muon_snsm"):
        spec = snsm.get_spec(name)
        assert spec.route == "hidden" and spec.harness_lr == 5e-3 and spec.paper_lr is None
    assert snsm.get_spec("muon_sm").takes_rank and not snsm.get_spec("muon").takes_rank


def test_hugging_face_helper_routes_by_the_spec():
    from snsm.integrations.hf import optimizer_cls_and_kwargs

    model = _Model()
    cls, kwargs = optimizer_cls_and_kwargs(model, "muon_sm", plain={"lr": 1e-2}, lr=5e-3, rank=4)
    optimizer = cls(**kwargs)
    assert cls is snsm.MuonSM
    matrix, aux = optimizer.param_groups
    assert any(p is model.lm_head.weight for p in aux["params"])
    assert (matrix["orthogonalize"], aux["orthogonalize"], aux["lr"]) == (True, False, 1e-2)


def test_complement_buffer_is_an_8bit_ema_of_the_complement():
    """rank 1 of an (8, 6) matrix; the buffer e = (1 - b1) c after one step, at 8 bits."""
    from snsm.rules.precision import open_state

    a, b = _matrices(shapes=[(8, 6)]), _matrices(shapes=[(8, 6)])
    grads = grad_stream(a, steps=4)
    buffered = snsm.MuonSM(a, rank=1, update_gap=2, complement="buffer", nesterov=False)
    run(buffered, a, grads[:1])
    state = buffered.state[a[0]]
    assert state["complement_momentum"].dtype == torch.uint8
    basis = state["basis"]  # (6, 1): P(G) = G Q, P^T(X) = X Q^T
    complement = grads[0][0] - grads[0][0] @ basis @ basis.T
    buffer = open_state(state, {})["complement_momentum"]
    torch.testing.assert_close(buffer, 0.05 * complement, rtol=0,
                               atol=0.05 * complement.abs().max().item() / 100)
    run(buffered, a, grads[1:])
    run(snsm.MuonSM(b, rank=1, update_gap=2), b, grads)
    assert not torch.equal(a[0], b[0])
