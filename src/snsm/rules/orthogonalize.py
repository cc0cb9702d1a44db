"""The orthogonalizing rule (Muon): the update of a hidden matrix is an approximate U V^T of its
momentum M = U S V^T, computed by a Newton-Schulz iteration, then scaled for its shape.

* :func:`newton_schulz`: X_0 = M / max(||M||_F, eps) (so every singular value is <= 1), then
  k times  A = X X^T,  X <- a X + (b A + c A^2) X.  Each singular value x of X_0 follows the
  scalar map p(x) = a x + b x^3 + c x^5; with the default coefficients and 5 steps every x in
  [0.01, 1] lands in about [0.68, 1.13] (U S' V^T with S' near I, not U V^T exactly).
* :func:`orthogonal_update_scale`: the factor on the learning rate for an m x n matrix.
* :func:`subset_normalize_`: the optional Subset-Norm second moment after orthogonalization,
  one value per row or column of O (NorMuon-like), O(m) or O(n) state.
* :class:`OrthogonalPlan` and :func:`orthogonalized_update`: the rule as the optimizers run it
  (``orthogonalize=True`` in a param group: :mod:`snsm.optim.plan`, :mod:`snsm.optim.update`).

Tensors of more than two dims are taken as their (shape[0], rest) matrix view.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from snsm.checks import check_choice, check_int, check_nonnegative
from snsm.rules.momentum import matrix_view_shape
from snsm.rules.step_size import denominator

#: Keller Jordan's quintic coefficients (a, b, c), eps and step count, as torch.optim.Muon's.
DEFAULT_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
DEFAULT_EPS = 1e-7
DEFAULT_STEPS = 5
#: Compute dtypes of the iteration. bfloat16 is the default on every device (as torch.optim.Muon
#: and the reference run it); float32 is the accurate option; float64 is for checks.
ORTHOGONALIZE_DTYPES = (torch.bfloat16, torch.float32, torch.float64)
#: Shape scalings, named as torch.optim.Muon's ``adjust_lr_fn``.
SHAPE_SCALES = ("original", "match_rms_adamw", "none")
#: Subsets of the second moment after orthogonalization: one value per row, per column, or per
#: index of the larger dimension ("heuristic", as Subset-Norm's default partition).
SUBSET_AXES = ("row", "column", "heuristic")
#: The group key ``normalize``: no second moment, or one of :data:`SUBSET_AXES`.
NORMALIZE_RULES = ("none",) + SUBSET_AXES
#: The group key ``ns_dtype`` names the compute dtype of the iteration.
NS_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
SECOND_MOMENT = "second_moment"  # the state key of the second moment after orthogonalization


def check_matrix_shape(shape: tuple[int, ...], what: str = "the orthogonalizing rule") -> tuple[int, int]:
    """The (m, n) matrix view of ``shape``; a ValueError for fewer than 2 dims or 0 elements."""
    shape = tuple(shape)
    if len(shape) < 2 or math.prod(shape) == 0:
        raise ValueError(f"{what} needs a matrix (2+ dims, no zero-size dim); got shape "
                         f"{shape}. Route 1-D and empty tensors to the auxiliary rule")
    return matrix_view_shape(shape)


def check_coefficients(coefficients) -> tuple[float, float, float]:
    """Three finite real numbers (a, b, c)."""
    if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3:
        raise ValueError(f"coefficients must be three numbers (a, b, c), got {coefficients!r}")
    for name, value in zip("abc", coefficients):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"coefficient {name} must be a finite number, got {value!r} "
                             f"in coefficients={tuple(coefficients)!r}")
    return tuple(coefficients)


def newton_schulz(grad: Tensor, steps: int = DEFAULT_STEPS,
                  coefficients: tuple[float, float, float] = DEFAULT_COEFFICIENTS,
                  eps: float = DEFAULT_EPS, dtype: torch.dtype = torch.bfloat16) -> Tensor:
    """O ~ U V^T of ``grad`` = U S V^T (its matrix view), computed in ``dtype``; same shape.

    With X = grad in ``dtype``, transposed when tall (m > n) so that X X^T is the smaller Gram
    matrix, X <- X / max(||X||_F, eps), then ``steps`` times

        A = X X^T;  B = b A + c A A;  X <- a X + B X,

    and transposed back. The same operations in the same order as torch.optim.Muon's
    iteration, so with ``dtype=torch.bfloat16`` the result equals torch's bit for bit.
    ``grad`` is not modified (torch's own iteration normalizes a bf16 input in place).
    """
    check_matrix_shape(tuple(grad.shape))
    a, b, c = check_coefficients(coefficients)
    check_int("steps", steps, minimum=1)
    check_nonnegative("eps", eps)
    check_choice("dtype", dtype, ORTHOGONALIZE_DTYPES)
    matrix = grad.reshape(grad.shape[0], -1)
    x = matrix.to(dtype)
    tall = matrix.size(0) > matrix.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, polynomial, x, beta=a)
    if tall:
        x = x.T
    return x if grad.ndim == 2 else x.reshape(grad.shape)


def orthogonal_update_scale(shape: tuple[int, ...], rule: str = "original") -> float:
    """The learning-rate factor for an orthogonalized update of an m x n matrix.

    * ``original`` (Keller Jordan's, torch's default): sqrt(max(1, m / n)), which gives the
      update of a tall matrix the RMS of a square one's.
    * ``match_rms_adamw`` (Moonshot's): 0.2 sqrt(max(m, n)), so the update's RMS is about
      0.2, AdamW's typical update RMS, and AdamW's lr and weight decay carry over.
    * ``none``: 1.

    torch.optim.Muon computes the same numbers (it takes only 2-D shapes).
    """
    check_choice("shape scale rule", rule, SHAPE_SCALES)
    m, n = check_matrix_shape(shape, "the shape scaling")
    if rule == "original":
        return math.sqrt(max(1, m / n))
    if rule == "match_rms_adamw":
        return 0.2 * math.sqrt(max(m, n))
    return 1.0


def subset_axis(shape: tuple[int, ...], axis: str) -> str:
    """``row`` or ``column``; ``heuristic`` is one value per index of the larger dimension."""
    check_choice("subset axis", axis, SUBSET_AXES)
    m, n = check_matrix_shape(shape, "the subset normalization")
    if axis == "heuristic":
        return "row" if m >= n else "column"
    return axis


def subset_moment_shape(shape: tuple[int, ...], axis: str) -> tuple[int, int]:
    """Shape of the second moment of :func:`subset_normalize_`: (m, 1) by rows, (1, n) by columns."""
    m, n = check_matrix_shape(shape, "the subset normalization")
    return (m, 1) if subset_axis(shape, axis) == "row" else (1, n)


def subset_normalize_(update: Tensor, second_moment: Tensor, step: int | None, beta2: float,
                      eps: float, axis: str = "row") -> Tensor:
    """Subset-Norm of an orthogonalized update O (m x n): the normalized update, in the
    second moment's dtype; updates ``second_moment`` (shape :func:`subset_moment_shape`) in place.

    With s_i = mean of O_ij^2 over subset i (row i: over j; column j: over i),

        v <- b2 v + (1 - b2) s,   v_hat = v / (1 - b2^t)   (no correction when ``step`` is None),
        O' = O / (sqrt(v_hat) + eps),   result = O' ||O||_F / (||O'||_F + eps).

    The last factor keeps the update's Frobenius norm (so the shape scaling of Muon still
    applies unchanged); the rows (columns) are rebalanced among themselves. With ``step=None``
    this is NorMuon's published arithmetic, operation for operation. As the norm is restored,
    bias correction changes the result only through eps. From v = 0 at t = 1 with bias
    correction, v_hat = s: every row (column) of the result has the same RMS, ||O||_F / sqrt(mn).
    """
    if step is not None:
        check_int("step", step, minimum=1)
    if isinstance(beta2, bool) or not isinstance(beta2, (int, float)) or not 0.0 <= beta2 < 1.0:
        raise ValueError(f"beta2 must be in [0, 1), got {beta2!r}")
    check_nonnegative("eps", eps)
    expected = subset_moment_shape(tuple(update.shape), axis)
    if update.ndim != 2 or tuple(second_moment.shape) != expected:
        raise ValueError(f"subset_normalize_ needs a 2-D update and a second moment of shape "
                         f"{expected}; got update {tuple(update.shape)} and second moment "
                         f"{tuple(second_moment.shape)}")
    o = update.to(second_moment.dtype)
    norm = o.norm()
    dim = -1 if expected[1] == 1 else 0
    second_moment.lerp_(torch.mean(o * o, dim=dim, keepdim=True), 1 - beta2)
    correction = None if step is None else math.sqrt(1 - beta2 ** step)
    o = o * denominator(second_moment, correction, eps).reciprocal()
    return o.mul_(norm / o.norm().add_(eps))


@dataclass(frozen=True)
class OrthogonalPlan:
    """The orthogonalizing rule of one matrix: the iteration's settings, the shape scale on its
    learning rate, and the axis and shape of the second moment after it (None: none), all
    from the matrix's global shape."""

    steps: int
    coefficients: tuple[float, float, float]
    dtype: torch.dtype
    scale: float
    axis: str | None
    moment_shape: tuple[int, int] | None = None


@functools.lru_cache(maxsize=4096)
def orthogonal_plan(shape: tuple[int, ...], steps: int, coefficients: tuple[float, float, float],
                    dtype: str, shape_scale: str, normalize: str) -> OrthogonalPlan:
    """The rule for a tensor of ``shape``; ValueError naming the shape for a 1-D or empty one."""
    check_matrix_shape(shape)
    check_choice("normalize", normalize, NORMALIZE_RULES)
    check_choice("ns_dtype", dtype, NS_DTYPES)
    axis = None if normalize == "none" else subset_axis(shape, normalize)
    return OrthogonalPlan(steps, tuple(coefficients), NS_DTYPES[dtype],
                          orthogonal_update_scale(shape, shape_scale), axis,
                          None if axis is None else subset_moment_shape(shape, axis))


def orthogonalized_update(numer: Tensor, state: dict, plan: OrthogonalPlan, beta2: float,
                          eps: float) -> Tensor:
    """O = NS(N) (:func:`newton_schulz`, in the plan's dtype), then, with a second moment,
    :func:`subset_normalize_` of O (NorMuon's arithmetic: no bias correction) with
    ``state["second_moment"]``. The shape scale is the step size's, not applied here."""
    update = newton_schulz(numer, plan.steps, plan.coefficients, eps, plan.dtype)
    if plan.axis is None:
        return update
    matrix = update.reshape(update.shape[0], -1)
    return subset_normalize_(matrix, state[SECOND_MOMENT], None, beta2, eps,
                             plan.axis).view(numer.shape)
