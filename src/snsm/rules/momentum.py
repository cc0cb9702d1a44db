"""Momentum rules: the numerator N of the update p <- p - lr * N / D.

* ``none``: N = g.
* ``ema``: m <- b1 m + (1 - b1) g; N = m / (1 - b1^t) with bias correction.
* ``subspace`` (Subspace-Momentum): a projector P, rebuilt from the current
  gradient every ``update_gap`` steps, gives g_s = P(g); the momentum lives only
  there, m <- b1 m + (1 - b1) g_s, and

      N = P^T(m_hat) + (g - P^T(P(g))) = g + P^T(m_hat - g_s),

  momentum in the subspace and plain SGD in its orthogonal complement. On a
  refresh the momentum is reset to zero on the refresh step itself
  (``on_refresh="reset"``) or carried into the new basis
  (``on_refresh="project"``: m <- P_new(P_old^T(m))).

  ``complement`` says what the complement gets: ``"gradient"`` (the plain c = g - P^T P g,
  as above), ``"none"`` (N = P^T m_hat alone) or ``"buffer"``: a lean EMA of the complement,
  e <- b1 e + (1 - b1) c, kept at 8 bits in the state (``complement_momentum``, 1 byte per
  element, never bias-corrected, kept across refreshes), N = P^T m_hat + e (with Nesterov
  c.lerp(e, b1) in place of e).

Nesterov (``nesterov=True``, torch.optim.Muon's form): N = g.lerp(m, b1) = (1 - b1) g + b1 m
for ``ema``; for ``subspace`` the same in the subspace, m_hat replaced by P(g).lerp(m_hat, b1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from snsm.projectors import Projector

MOMENTUM_RULES = ("none", "ema", "subspace")
REFRESH_RULES = ("reset", "project")
COMPLEMENT_RULES = ("gradient", "none", "buffer")
COMPLEMENT_BUFFER = "complement_momentum"  # the state key of complement="buffer"

_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 finalizer), for counter-based generators."""
    h = 0x9E3779B97F4A7C15
    for value in values:
        h = (h ^ (value & _MASK64)) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


def as_matrix(tensor: Tensor) -> Tensor:
    """The (shape[0], rest) matrix view of a tensor of 2+ dims (also when shape[0] is 0)."""
    return tensor.reshape(tensor.shape[0], math.prod(tensor.shape[1:]))


def matrix_view_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """The shape of :func:`as_matrix`'s view: (shape[0], product of the rest)."""
    return shape[0], math.prod(shape[1:])


def momentum_steps(step: int, update_gap: int, on_refresh: str) -> int:
    """tau: steps since the subspace momentum was (re)started, counting this one."""
    return (step - 1) % update_gap + 1 if on_refresh == "reset" else step


def is_refresh(step: int, update_gap: int) -> bool:
    """The projector is rebuilt on steps 1, 1 + gap, 1 + 2 gap, ..."""
    return (step - 1) % update_gap == 0


def refresh_projector_(grad2d: Tensor, state: dict, projector: Projector, rank: int,
                       on_refresh: str, seed: int, step: int) -> None:
    """Rebuild the projector's state from ``grad2d``; reset or re-project the momentum.
    ``state``: working tensors (:mod:`snsm.rules.precision`)."""
    generator = torch.Generator(device="cpu").manual_seed(mix_seed(seed, step))
    carry = on_refresh == "project" and step > 1
    momentum = state["momentum"]
    if carry:
        full = projector.back_add_(torch.zeros_like(grad2d), momentum, state)
    state.update(projector.build(grad2d, rank, generator))
    if carry:
        momentum.copy_(projector.project(full, state))
    else:
        momentum.zero_()


def subspace_numerator(grad: Tensor, state: dict, projector: Projector, beta1: float,
                       correction: float | Tensor | None, nesterov: bool = False,
                       complement: str = "gradient") -> Tensor:
    """N = g + P^T(m_hat - P(g)) (``complement="gradient"``) or P^T(m_hat) (``"none"``),
    m_hat = m / correction (with ``nesterov``: P(g).lerp(m_hat, b1)); updates the momentum in
    place.

    The projector must already be refreshed for this step (:func:`refresh_projector_`).
    ``correction`` is 1 - b1^tau with bias correction (a number, or tensor data in the
    compiled path), None without. ``state``: working tensors (:mod:`snsm.rules.precision`).
    """
    grad2d = as_matrix(grad)
    low = projector.project(grad2d, state)
    momentum = state["momentum"].lerp_(low, 1 - beta1)
    m_hat = momentum if correction is None else momentum / correction
    if nesterov:
        m_hat = low.lerp(m_hat, beta1)
    if complement == "none":
        numerator = torch.zeros_like(grad2d, memory_format=torch.contiguous_format)
        projector.back_add_(numerator, m_hat, state)
    elif complement == "buffer":
        numerator = _complement_buffer(grad2d, low, state, projector, beta1, nesterov)
        projector.back_add_(numerator, m_hat, state)
    else:
        numerator = grad2d.clone(memory_format=torch.contiguous_format)
        projector.back_add_(numerator, m_hat - low, state)
    return numerator.view(grad.shape)


def _complement_buffer(grad2d: Tensor, low: Tensor, state: dict, projector: Projector,
                       beta1: float, nesterov: bool) -> Tensor:
    """e <- b1 e + (1 - b1) c with c = g - P^T P(g); returns a new tensor: e, or with Nesterov
    c.lerp(e, b1)."""
    complement = grad2d.clone(memory_format=torch.contiguous_format)
    projector.back_add_(complement, -low, state)
    buffer = as_matrix(state[COMPLEMENT_BUFFER]).lerp_(complement, 1 - beta1)
    return complement.lerp_(buffer, beta1) if nesterov else buffer.clone()
