"""Tests for the Subspace-Momentum projectors (snsm.projectors)."""

from __future__ import annotations

import pytest
import torch

from devices import DEVICES
from snsm.projectors import PROJECTORS, fwht, get_projector

NAMES = sorted(PROJECTORS)
BASIS = ["svd", "rsvd", "gaussian", "srht"]
INDEX = ["uniform", "topk"]
RANDOM = ["rsvd", "gaussian", "srht", "uniform"]
SHAPES = {"tall": (24, 10), "wide": (10, 24), "square": (12, 12)}
# 4: below both sides; 16: between the sides (basis clamps, index does not); 64: clamps all.
RANKS = [4, 16, 64]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32,
          device="cpu") -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed)).to(device, dtype)


def build(name: str, grad: torch.Tensor, rank: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return PROJECTORS[name].build(grad, rank, gen(seed))


def back(name: str, shape: tuple[int, int], low: torch.Tensor, state) -> torch.Tensor:
    """``P^T(low)`` via back_add_ into zeros."""
    return PROJECTORS[name].back_add_(torch.zeros(shape, dtype=low.dtype, device=low.device),
                                      low, state)


def proj_matrix(q: torch.Tensor) -> torch.Tensor:
    """``Q Q^T``: the orthogonal projector onto span(Q), free of sign/rotation ambiguity."""
    q = q.double()
    return q @ q.T


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("rank", RANKS)
def test_state_layout_matches_build(name, kind, rank, device):
    shape = SHAPES[kind]
    p = PROJECTORS[name]
    state = p.build(randn(*shape, device=device), rank, gen())
    layout = p.state_layout(shape, rank, torch.float32)
    assert set(state) == set(layout)
    for key, (lshape, ldtype) in layout.items():
        assert tuple(state[key].shape) == lshape
        assert state[key].dtype == ldtype and state[key].device.type == device.type
    r = min(rank, min(shape) if name in BASIS else max(shape))
    key, (lshape, _) = next(iter(layout.items()))
    assert lshape == ((min(shape), r) if name in BASIS else (r,))
    for key, tensor in state.items():  # no view keeping a larger buffer (the SVD's U) alive
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size(), key


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("rank", RANKS)
def test_low_shape_matches_project(name, kind, rank):
    shape = SHAPES[kind]
    p = PROJECTORS[name]
    g = randn(*shape)
    low = p.project(g, p.build(g, rank, gen()))
    assert tuple(low.shape) == p.low_shape(shape, rank)
    m, n = shape
    r = min(rank, min(shape) if name in BASIS else max(shape))
    if name in BASIS:
        assert low.shape == ((m, r) if m >= n else (r, n))
    else:
        assert low.shape == ((r, n) if m >= n else (m, r))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("rank", RANKS)
def test_project_after_back_is_identity(name, kind, rank, device):
    """P P^T = I: orthonormal basis, or distinct indices."""
    shape = SHAPES[kind]
    p = PROJECTORS[name]
    state = build(name, randn(*shape, device=device), rank)
    x = randn(*p.low_shape(shape, rank), seed=1, device=device)
    torch.testing.assert_close(p.project(back(name, shape, x, state), state), x, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", BASIS)
@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("rank", RANKS)
def test_basis_is_orthonormal(name, kind, rank, device):
    q = build(name, randn(*SHAPES[kind], device=device), rank)["basis"]
    torch.testing.assert_close(q.T @ q, torch.eye(q.shape[1], device=device), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", SHAPES)
def test_back_add_adds_in_place(name, kind):
    shape = SHAPES[kind]
    p = PROJECTORS[name]
    state = build(name, randn(*shape), 4)
    low = randn(*p.low_shape(shape, 4), seed=1)
    out = randn(*shape, seed=2)
    before = out.clone()
    ret = p.back_add_(out, low, state)
    assert ret is out
    m, n = shape
    if name in BASIS:
        q = state["basis"]
        expected = low @ q.T if m >= n else q @ low
    else:
        expected = torch.zeros(shape)
        idx = state["indices"]
        if m >= n:
            expected[idx] = low
        else:
            expected[:, idx] = low
    torch.testing.assert_close(out, before + expected, atol=1e-5, rtol=1e-5)
    assert not torch.equal(out, before)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", SHAPES)
def test_full_rank_reconstructs(name, kind, device):
    """With rank >= the reduced side, P^T P G = G."""
    shape = SHAPES[kind]
    g = randn(*shape, device=device)
    state = build(name, g, 64)
    recon = back(name, shape, PROJECTORS[name].project(g, state), state)
    torch.testing.assert_close(recon, g, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bad_rank_and_shape_raise(name):
    p = PROJECTORS[name]
    with pytest.raises(ValueError, match="rank"):
        p.build(randn(6, 4), 0, gen())
    with pytest.raises(ValueError, match="2-D"):
        p.build(randn(6), 2, gen())
    with pytest.raises(ValueError, match="rank"):
        p.state_layout((6, 4), -1, torch.float32)


# ----------------------------------------------------------------------------- data-dependent


def low_rank_plus_noise(m: int, n: int, sv: list[float], noise: float, seed: int = 0):
    """``U diag(sv) V^T + noise * E`` and its exact SVD factors."""
    g = gen(seed)
    k = len(sv)
    u = torch.linalg.qr(torch.randn(m, k, generator=g)).Q
    v = torch.linalg.qr(torch.randn(n, k, generator=g)).Q
    a = u @ torch.diag(torch.tensor(sv)) @ v.T + noise * torch.randn(m, n, generator=g)
    return a


@pytest.mark.parametrize("shape", [(60, 20), (20, 60), (30, 30)])
def test_svd_captures_top_singular_vectors(shape):
    m, n = shape
    r = 3
    a = low_rank_plus_noise(m, n, [10.0, 8.0, 6.0], 1e-2)
    q = build("svd", a, r)["basis"]
    u, s, vh = torch.linalg.svd(a.double())
    ref = vh[:r].T if m >= n else u[:, :r]
    torch.testing.assert_close(proj_matrix(q), ref @ ref.T, atol=1e-4, rtol=0)
    # P^T P A is the best rank-r approximation (Eckart-Young).
    recon = back("svd", shape, PROJECTORS["svd"].project(a, {"basis": q}), {"basis": q})
    best = torch.linalg.matrix_norm(a.double() - recon.double())
    torch.testing.assert_close(best, s[r:].square().sum().sqrt(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(96, 48), (48, 96)])
def test_rsvd_matches_svd_with_spectral_gap(shape):
    a = low_rank_plus_noise(*shape, [20.0, 15.0, 12.0, 10.0], 1e-2, seed=3)
    q_svd = build("svd", a, 4)["basis"]
    q_rsvd = build("rsvd", a, 4)["basis"]
    torch.testing.assert_close(proj_matrix(q_rsvd), proj_matrix(q_svd), atol=1e-4, rtol=0)


def gapped_gradient(m: int, n: int, r: int, gap: float, seed: int = 0) -> torch.Tensor:
    """A gradient-like m x n matrix: singular values decaying from 1 to 1/2 over the top r,
    then ``gap`` times smaller and decaying on (sigma_{r+9} / sigma_r <= gap)."""
    g = gen(seed)
    s = min(m, n)
    u = torch.linalg.qr(torch.randn(m, s, generator=g, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(n, s, generator=g, dtype=torch.float64)).Q
    top = torch.linspace(1.0, 0.5, r, dtype=torch.float64)
    tail = 0.5 * gap * torch.linspace(1.0, 0.1, s - r, dtype=torch.float64)
    return (u * torch.cat([top, tail])) @ v.T


@pytest.mark.parametrize("shape", [(1376, 512), (512, 1376)], ids=["tall", "wide"])
@pytest.mark.parametrize("gap,tolerance", [(0.25, 1e-2), (0.1, 1e-4)])
def test_rsvd_gives_the_svd_subspace_on_large_matrices_with_a_gap(shape, gap, tolerance):
    """The stated tolerance of RSVDProjector (sin of the largest principal angle) on
    llama-60m's MLP shapes at rank 128: a cheaper refresh than the full SVD."""
    from snsm.projectors.basis import subspace_distance

    a = gapped_gradient(*shape, r=128, gap=gap).float()
    q_svd = build("svd", a, 128)["basis"]
    q_rsvd = build("rsvd", a, 128)["basis"]
    assert subspace_distance(q_rsvd, q_svd) <= tolerance
    q_gauss = build("gaussian", a, 128)["basis"]  # no data: far from it
    assert subspace_distance(q_gauss, q_svd) > 0.5


def test_subspace_distance_is_the_sine_of_the_largest_principal_angle():
    from snsm.projectors.basis import subspace_distance

    e = torch.eye(3)
    angle = torch.tensor(0.3)
    rotated = torch.stack([torch.cos(angle), torch.sin(angle), torch.tensor(0.0)])[:, None]
    torch.testing.assert_close(subspace_distance(e[:, :1], rotated).float(), torch.sin(angle))
    assert subspace_distance(e[:, :2], e[:, [1, 0]]) < 1e-12
    torch.testing.assert_close(subspace_distance(e[:, :1], e[:, 2:]).float(), torch.tensor(1.0))


def test_rsvd_falls_back_to_svd_when_sketch_is_not_smaller():
    a = randn(40, 12)  # r + p = 6 + 8 >= 12
    q_rsvd = build("rsvd", a, 6)["basis"]
    torch.testing.assert_close(q_rsvd, build("svd", a, 6)["basis"])


@pytest.mark.parametrize("shape", [(30, 8), (8, 30)])
def test_topk_picks_largest_norm_slices(shape):
    m, n = shape
    tall = m >= n
    size = m if tall else n
    scale = torch.ones(size)
    chosen = torch.tensor([2, 7, 11, 25])
    scale[chosen] = 10.0
    g = randn(*shape) * (scale[:, None] if tall else scale[None, :])
    idx = build("topk", g, 4)["indices"]
    assert torch.equal(idx, chosen)


@pytest.mark.parametrize("name", INDEX)
@pytest.mark.parametrize("kind", SHAPES)
def test_indices_are_sorted_distinct_in_range(name, kind):
    shape = SHAPES[kind]
    idx = build(name, randn(*shape), 16)["indices"]
    assert torch.equal(idx, torch.sort(idx).values)
    assert idx.unique().numel() == idx.numel() == min(16, max(shape))
    assert 0 <= int(idx.min()) and int(idx.max()) < max(shape)


# ----------------------------------------------------------------------------- randomness


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_state(name):
    g = randn(24, 10)
    s1, s2 = build(name, g, 4, seed=5), build(name, g, 4, seed=5)
    for key in s1:
        assert torch.equal(s1[key], s2[key])


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_differ(name):
    g = randn(80, 40)  # s = 40 > rank + oversampling: rsvd really sketches
    s1, s2 = build(name, g, 4, seed=0), build(name, g, 4, seed=1)
    assert any(not torch.equal(s1[k], s2[k]) for k in s1)


@pytest.mark.parametrize("name", ["gaussian", "srht", "uniform"])
def test_data_independent(name):
    s1, s2 = build(name, randn(24, 10, seed=0), 4), build(name, randn(24, 10, seed=1), 4)
    for key in s1:
        assert torch.equal(s1[key], s2[key])


@pytest.mark.parametrize("name", NAMES)
def test_global_rng_untouched(name):
    g = randn(40, 30)
    before = torch.get_rng_state()
    PROJECTORS[name].build(g, 4, gen())
    assert torch.equal(torch.get_rng_state(), before)


# ----------------------------------------------------------------------------- fwht / srht


def sylvester(n: int) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_fwht_matches_sylvester_hadamard(n):
    x = torch.randn(3, 2, n, generator=gen(), dtype=torch.float64)
    y = fwht(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x @ sylvester(n))
    y[...] = 0  # a new tensor, not a view of x
    assert x.abs().sum() > 0


def test_fwht_is_involution_up_to_n():
    x = torch.randn(5, 16, generator=gen(), dtype=torch.float64)
    torch.testing.assert_close(fwht(fwht(x)), 16 * x)


@pytest.mark.parametrize("n", [0, 3, 12])
def test_fwht_rejects_non_power_of_two(n):
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(2, n))


def test_srht_power_of_two_side_is_scaled_hadamard_rows():
    """For s = 2^k the rows of M are orthonormal, so span(Q) = span(M^T) exactly."""
    q = build("srht", randn(40, 16), 5)["basis"]
    # every entry of a normalized signed Hadamard row is +-1/sqrt(s), QR keeps that up to sign
    torch.testing.assert_close(q.abs(), torch.full_like(q, 0.25), atol=1e-6, rtol=0)


@pytest.mark.parametrize("s", [3, 5, 6, 7, 10, 17])
def test_srht_orthonormal_for_any_side(s):
    for rank in range(1, s + 1):
        q = build("srht", randn(s + 4, s), rank)["basis"]
        torch.testing.assert_close(q.T @ q, torch.eye(rank), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- dtypes / devices / registry


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", SHAPES)
def test_bf16_gradients(name, kind):
    shape = SHAPES[kind]
    p = PROJECTORS[name]
    g = randn(*shape, dtype=torch.bfloat16)
    state = p.build(g, 4, gen())
    for key, (lshape, ldtype) in p.state_layout(shape, 4, torch.bfloat16).items():
        assert state[key].shape == lshape and state[key].dtype == ldtype
    low = p.project(g, state)
    assert low.dtype == torch.bfloat16 and tuple(low.shape) == p.low_shape(shape, 4)
    out16 = p.back_add_(torch.zeros(shape, dtype=torch.bfloat16), low, state)
    out32 = p.back_add_(torch.zeros(shape), low, state)  # fp32 accumulator
    assert out16.dtype == torch.bfloat16 and out32.dtype == torch.float32
    torch.testing.assert_close(out16.float(), out32, atol=0.05, rtol=0.02)
    assert torch.isfinite(out32).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_state_on_grad_device(name, device):
    p = PROJECTORS[name]
    g = randn(24, 10).to(device)
    state = p.build(g, 4, gen())
    assert all(t.device == g.device for t in state.values())
    out = p.back_add_(torch.zeros_like(g), p.project(g, state), state)
    assert out.device == g.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    g = randn(48, 20)
    cpu = build(name, g, 4)
    cuda = PROJECTORS[name].build(g.cuda(), 4, gen())
    for key in cpu:
        if key == "basis":
            torch.testing.assert_close(proj_matrix(cuda[key].cpu()), proj_matrix(cpu[key]), atol=1e-4, rtol=0)
        else:
            assert torch.equal(cuda[key].cpu(), cpu[key])


def test_registry():
    assert set(PROJECTORS) == {"svd", "rsvd", "gaussian", "srht", "uniform", "topk"}
    for name, p in PROJECTORS.items():
        assert get_projector(name) is p and p.name == name


@pytest.mark.parametrize("bad", ["nope", "SVD", None])
def test_get_projector_rejects_unknown(bad):
    with pytest.raises(ValueError) as info:
        get_projector(bad)
    msg = str(info.value)
    assert repr(bad) in msg
    assert all(name in msg for name in NAMES)
