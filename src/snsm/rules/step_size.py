"""Step-size rules: the denominator D of the update p <- p - lr * N / D.

With s = g*g per coordinate, or s_i = sum of g_j^2 over subset i (Subset-Norm):

* ``sum`` (AdaGrad): v <- v + s
* ``ema`` (Adam / RMSprop): v <- b2 v + (1 - b2) s, v_hat = v / (1 - b2^t) with bias correction
* ``none``: D = 1

and D = sqrt(v_hat) + eps, broadcast to every coordinate of a subset.
"""

from __future__ import annotations

from torch import Tensor

from snsm.rules.partition import Partition, sum_squares

ACCUMULATORS = ("none", "sum", "ema")


def accumulate_(acc: Tensor, grad: Tensor, partition: Partition, kind: str, beta2: float) -> None:
    """Add this step's squared gradient (per coordinate or per subset) into ``acc``, in the
    accumulator's dtype (float32 for 16-bit parameters where a sum could overflow)."""
    if partition.per_coordinate:
        grad = grad.to(acc.dtype)
        if kind == "sum":
            acc.addcmul_(grad, grad, value=1)
        else:
            acc.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        return
    squares = sum_squares(grad, partition, acc.dtype)
    if kind == "sum":
        acc.add_(squares)
    else:
        acc.mul_(beta2).add_(squares, alpha=1 - beta2)


def denominator(acc: Tensor, bias_correction2_sqrt: float | None, eps: float) -> Tensor:
    """D = sqrt(v) / sqrt(1 - b2^t) + eps (the division only with bias correction)."""
    denom = acc.sqrt()
    if bias_correction2_sqrt is not None:
        denom.div_(bias_correction2_sqrt)
    return denom.add_(eps)
