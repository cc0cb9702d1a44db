import math

import pytest
import torch
from torch.optim._muon import _adjust_lr, _zeropower_via_newtonschulz

from snsm.rules.orthogonalize import (DEFAULT_COEFFICIENTS, DEFAULT_EPS, newton_schulz,
                                      orthogonal_update_scale, subset_moment_shape,
                                      subset_normalize_)

SHAPES = [(32, 32), (16, 48), (48, 16), (1, 20), (20, 1), (7, 3)]


def _random(shape, seed, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _conditioned(m, n, condition, seed):
    """U diag(s) V^T with s geometric from 1 down to 1 / condition."""
    generator = torch.Generator().manual_seed(seed)
    r = min(m, n)
    u, _ = torch.linalg.qr(torch.randn(m, r, generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, r, generator=generator, dtype=torch.float64))
    s = torch.logspace(0, -math.log10(condition), r, dtype=torch.float64)
    return u @ torch.diag(s) @ v.T


def _quintic(x, steps=5, coefficients=DEFAULT_COEFFICIENTS):
    a, b, c = coefficients
    for _ in range(steps):
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def _band(low, high):
    """Range of the 5-step scalar map over [low, high] (a fine grid, float64)."""
    values = _quintic(torch.linspace(low, high, 200001, dtype=torch.float64))
    return values.min().item(), values.max().item()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("steps,coefficients", [(5, DEFAULT_COEFFICIENTS), (3, (2.0, -1.5, 0.5))])
def test_bitwise_equal_to_torch_muon_iteration(shape, dtype, steps, coefficients):
    grad = _random(shape, 0, dtype) * 3
    before = grad.clone()
    expected = _zeropower_via_newtonschulz(grad.clone(), coefficients, steps, DEFAULT_EPS)
    ours = newton_schulz(grad, steps, coefficients, DEFAULT_EPS, torch.bfloat16)
    assert ours.dtype == torch.bfloat16 and ours.shape == grad.shape
    assert torch.equal(ours, expected)
    assert torch.equal(grad, before)  # torch's own normalizes a bf16 input in place; ours not


def test_float64_iteration_is_the_scalar_map_on_singular_values():
    grad = _conditioned(24, 40, 30.0, 1)
    u, s, vh = torch.linalg.svd(grad, full_matrices=False)
    expected = u @ torch.diag(_quintic(s / grad.norm())) @ vh
    torch.testing.assert_close(newton_schulz(grad, dtype=torch.float64), expected,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(64, 64), (32, 96), (96, 32)])
@pytest.mark.parametrize("dtype,margin", [(torch.float32, 1e-4), (torch.bfloat16, 0.02)])
def test_singular_values_inside_the_iterations_band(shape, dtype, margin):
    grad = _conditioned(*shape, 20.0, 2)
    s = torch.linalg.svdvals(grad)
    low, high = _band((s.min() / grad.norm()).item(), (s.max() / grad.norm()).item())
    assert 0.6 < low and high < 1.2  # the quintic's known band, about [0.68, 1.13]
    out = torch.linalg.svdvals(newton_schulz(grad.float(), dtype=dtype).double())
    assert out.min() >= low - margin and out.max() <= high + margin, (out, low, high)


def test_band_of_the_default_coefficients():
    low, high = _band(0.01, 1.0)
    assert low == pytest.approx(0.6818, abs=1e-4) and high == pytest.approx(1.1344, abs=1e-4)


def test_more_than_two_dims_use_the_matrix_view():
    grad = _random((6, 2, 5), 3)
    torch.testing.assert_close(newton_schulz(grad, dtype=torch.float32),
                               newton_schulz(grad.reshape(6, 10), dtype=torch.float32).view(6, 2, 5),
                               rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(32, 32), (16, 48), (48, 16), (1, 20), (20, 1)])
@pytest.mark.parametrize("rule", ["original", "match_rms_adamw"])
def test_shape_scale_equals_torch(shape, rule):
    assert orthogonal_update_scale(shape, rule) == _adjust_lr(1.0, rule, torch.Size(shape))


def test_shape_scale_values():
    assert orthogonal_update_scale((48, 16), "original") == math.sqrt(3)
    assert orthogonal_update_scale((16, 48), "original") == 1.0
    assert orthogonal_update_scale((16, 48), "match_rms_adamw") == 0.2 * math.sqrt(48)
    assert orthogonal_update_scale((16, 48), "none") == 1.0
    assert orthogonal_update_scale((8, 2, 3), "original") == math.sqrt(8 / 6)


@pytest.mark.parametrize("shape,axis,state", [
    ((12, 5), "row", (12, 1)), ((12, 5), "column", (1, 5)), ((12, 5), "heuristic", (12, 1)),
    ((5, 12), "heuristic", (1, 12)), ((4, 4), "heuristic", (4, 1))])
def test_subset_moment_is_one_value_per_row_or_column(shape, axis, state):
    assert subset_moment_shape(shape, axis) == state


@pytest.mark.parametrize("axis", ["row", "column"])
@pytest.mark.parametrize("step", [1, None])
def test_first_step_equalizes_subsets_and_keeps_the_norm(axis, step):
    update = newton_schulz(_random((12, 20), 4) * torch.linspace(0.1, 3, 20))
    second_moment = torch.zeros(subset_moment_shape(update.shape, axis))
    out = subset_normalize_(update, second_moment, step, 0.95, 1e-10, axis)
    o = update.float()
    rms = out.pow(2).mean(dim=-1 if axis == "row" else 0).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, (o.norm() / math.sqrt(o.numel())).item()))
    torch.testing.assert_close(out.norm(), o.norm())
    expected = 0.05 * o.pow(2).mean(dim=-1 if axis == "row" else 0, keepdim=True)
    torch.testing.assert_close(second_moment, expected, rtol=0, atol=0)
    assert not torch.allclose(rms, update.float().pow(2).mean(dim=-1 if axis == "row" else 0).sqrt())


def test_no_bias_correction_is_normuons_arithmetic():
    """NorMuon's published update, written out: bitwise the same over several steps."""
    second_moment, reference = torch.zeros(16, 1), torch.zeros(16, 1)
    for seed in range(3):
        update = newton_schulz(_random((16, 24), seed))
        ours = subset_normalize_(update, second_moment, None, 0.95, 1e-10, "row")
        o = update.float()
        norm = o.norm(dim=(-2, -1), keepdim=True)
        reference.lerp_(torch.mean(o * o, dim=-1, keepdim=True), 1 - 0.95)
        o.mul_(1 / reference.sqrt().add_(1e-10))
        o.mul_(norm / o.norm(dim=(-2, -1), keepdim=True).add_(1e-10))
        assert torch.equal(ours, o) and torch.equal(second_moment, reference)


@pytest.mark.parametrize("call,message", [
    (lambda: newton_schulz(torch.ones(5)), r"\(5,\)"),
    (lambda: newton_schulz(torch.ones(0, 4)), r"\(0, 4\)"),
    (lambda: newton_schulz(torch.ones(3, 4), coefficients=(1.0, float("nan"), 1.0)), "nan"),
    (lambda: newton_schulz(torch.ones(3, 4), coefficients=(1.0, 2.0)), r"\(1.0, 2.0\)"),
    (lambda: newton_schulz(torch.ones(3, 4), steps=0), "got 0"),
    (lambda: newton_schulz(torch.ones(3, 4), dtype=torch.int32), "int32"),
    (lambda: orthogonal_update_scale((3, 4), "sqrt"), "'sqrt'"),
    (lambda: orthogonal_update_scale((7,), "original"), r"\(7,\)"),
    (lambda: subset_moment_shape((3, 4), "diagonal"), "'diagonal'"),
    (lambda: subset_normalize_(torch.ones(3, 4), torch.zeros(4, 1), 1, 0.9, 1e-8), r"\(4, 1\)"),
    (lambda: subset_normalize_(torch.ones(3, 4), torch.zeros(3, 1), 1, 1.0, 1e-8), "1.0"),
    (lambda: subset_normalize_(torch.ones(3, 4), torch.zeros(3, 1), 0, 0.9, 1e-8), "got 0"),
])
def test_bad_inputs_raise_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
