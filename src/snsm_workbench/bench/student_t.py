"""Student's t distribution without scipy: the CDF and its quantile, for any real df > 0.

* CDF through the regularized incomplete beta function:
  ``F(t; ν) = 1 - ½ I_x(ν/2, ½)`` for ``t >= 0``, with ``x = ν / (ν + t²)``, and
  ``F(-t) = 1 - F(t)``. ``I_x(a, b)`` is evaluated by its continued fraction (modified
  Lentz's method, as in Numerical Recipes §6.4), using the symmetry
  ``I_x(a, b) = 1 - I_{1-x}(b, a)`` where the fraction converges slowly (``x > (a+1)/(a+b+2)``).
* Quantile: the root of ``F(t; ν) = p``, bracketed and then bisected to ``1e-12`` relative
  (the CDF is monotone, so bisection cannot fail). df need not be an integer (Welch).

Known values it reproduces: ``t_{0.975, 1} = 12.706205``, ``t_{0.975, 2} = 4.302653``,
``t_{0.975, 4} = 2.776445``, ``t_{0.975, 30} = 2.042272``, and the normal limit 1.959964.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15
_MAX_TERMS = 500


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (modified Lentz), valid for x < (a+1)/(a+b+2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, _MAX_TERMS + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            value *= c * d
        if abs(c * d - 1.0) < _EPS:
            return value
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def regularized_beta(a: float, b: float, x: float) -> float:
    """``I_x(a, b) = B(x; a, b) / B(a, b)`` for a, b > 0 and x in [0, 1]."""
    if a <= 0 or b <= 0:
        raise ValueError(f"regularized_beta needs a, b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"regularized_beta needs x in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _check_df(df: float) -> None:
    if not df > 0 or math.isnan(df):
        raise ValueError(f"degrees of freedom must be > 0, got {df}")


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom."""
    _check_df(df)
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    upper_tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - upper_tail if t >= 0 else upper_tail


def t_quantile(p: float, df: float) -> float:
    """The ``t`` with ``P(T <= t) = p`` (``df`` may be fractional, e.g. Welch's)."""
    _check_df(df)
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs p in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)
