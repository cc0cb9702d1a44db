"""The named optimizers: fixed combinations of a momentum rule and a step-size rule.

| class        | momentum       | step size             | accumulator | bias correction |
|--------------|----------------|-----------------------|-------------|-----------------|
| AdamSN       | ema            | subset-norm           | ema         | yes             |
| AdamSNSM     | subspace       | subset-norm           | ema         | yes             |
| AdaGradSN    | ema (b1=0.9)   | subset-norm           | sum         | no              |
| AdaGradSNSM  | subspace       | subset-norm           | sum         | no              |
| RMSpropSN    | none           | subset-norm           | ema         | no              |
| SGDSM        | subspace       | none                  | -           | no              |
| AdaGradNorm  | none           | one subset per tensor | sum         | no              |
| AdaGrad      | none           | per coordinate        | sum         | no              |
| AdamW        | ema            | per coordinate        | ema         | yes             |

Learning rates: a Subset-Norm accumulator sums g^2 over a subset of k
coordinates, so sqrt(v) is about sqrt(k) times a per-coordinate one; the paper
uses about 10x Adam's lr for AdamSN and AdamSNSM (5e-2 against 5e-3 at LLaMA-60M),
2x for RMSpropSN, and lr 1.0 for AdaGradSNSM.
"""

from __future__ import annotations

from snsm.optim.optimizer import SNSM

Betas = tuple[float, float]


class AdamSN(SNSM):
    """Adam with Subset-Norm step sizes: full EMA momentum, one EMA accumulator per subset."""

    def __init__(self, params, lr: float = 1e-2, betas: Betas = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, subset_size: int | str = "heuristic", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, momentum="ema", accumulator="ema",
                         bias_correction=True, subset_size=subset_size, foreach=foreach,
                         maximize=maximize, compile=compile)


class AdamSNSM(SNSM):
    """Adam with Subset-Norm step sizes and Subspace-Momentum (the paper's AdamSNSM)."""

    def __init__(self, params, lr: float = 1e-2, betas: Betas = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, subset_size: int | str = "heuristic", rank: int = 128,
                 projector: str = "svd", update_gap: int = 200, on_refresh: str = "reset",
                 seed: int = 0, *, foreach: bool | None = None, maximize: bool = False,
                 compile: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, momentum="subspace",
                         accumulator="ema", bias_correction=True, subset_size=subset_size,
                         rank=rank, projector=projector, update_gap=update_gap,
                         on_refresh=on_refresh, seed=seed, foreach=foreach, maximize=maximize,
                         compile=compile)


class AdaGradSN(SNSM):
    """AdaGrad with Subset-Norm step sizes and EMA momentum (beta1 = 0.9, no bias correction)."""

    def __init__(self, params, lr: float = 1e-1, betas: Betas = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, subset_size: int | str = "heuristic", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, momentum="ema", accumulator="sum",
                         bias_correction=False, subset_size=subset_size, foreach=foreach,
                         maximize=maximize, compile=compile)


class AdaGradSNSM(SNSM):
    """AdaGrad with Subset-Norm step sizes and Subspace-Momentum (no bias correction)."""

    def __init__(self, params, lr: float = 1.0, betas: Betas = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, subset_size: int | str = "heuristic", rank: int = 128,
                 projector: str = "svd", update_gap: int = 200, on_refresh: str = "reset",
                 seed: int = 0, *, foreach: bool | None = None, maximize: bool = False,
                 compile: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, momentum="subspace",
                         accumulator="sum", bias_correction=False, subset_size=subset_size,
                         rank=rank, projector=projector, update_gap=update_gap,
                         on_refresh=on_refresh, seed=seed, foreach=foreach, maximize=maximize,
                         compile=compile)


class RMSpropSN(SNSM):
    """RMSprop with Subset-Norm step sizes: no momentum, EMA accumulator, no bias correction."""

    def __init__(self, params, lr: float = 2e-3, betas: Betas = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, subset_size: int | str = "heuristic", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, momentum="none",
                         accumulator="ema", bias_correction=False, subset_size=subset_size,
                         foreach=foreach, maximize=maximize, compile=compile)


class SGDSM(SNSM):
    """SGD with Subspace-Momentum: momentum in a rank-r subspace, plain SGD in its complement."""

    def __init__(self, params, lr: float = 1e-2, betas: Betas = (0.9, 0.999),
                 weight_decay: float = 0.0, rank: int = 128, projector: str = "svd",
                 update_gap: int = 200, on_refresh: str = "reset", seed: int = 0, *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, betas, 0.0, weight_decay, momentum="subspace",
                         accumulator="none", bias_correction=False, rank=rank,
                         projector=projector, update_gap=update_gap, on_refresh=on_refresh,
                         seed=seed, foreach=foreach, maximize=maximize, compile=compile)


class AdaGradNorm(SNSM):
    """AdaGrad-Norm: one accumulated squared norm per tensor, no momentum."""

    def __init__(self, params, lr: float = 1e-1, eps: float = 1e-6, weight_decay: float = 0.0, *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, (0.9, 0.999), eps, weight_decay, momentum="none",
                         accumulator="sum", bias_correction=False, subset_size="tensor",
                         foreach=foreach, maximize=maximize, compile=compile)


class AdaGrad(SNSM):
    """Per-coordinate AdaGrad (equals ``torch.optim.Adagrad`` without weight decay)."""

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                 *, foreach: bool | None = None, maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, (0.9, 0.999), eps, weight_decay, momentum="none",
                         accumulator="sum", bias_correction=False, subset_size=1,
                         foreach=foreach, maximize=maximize, compile=compile)


class AdamW(SNSM):
    """Per-coordinate AdamW (equals ``torch.optim.AdamW``), the baseline of the family."""

    def __init__(self, params, lr: float = 1e-3, betas: Betas = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, momentum="ema", accumulator="ema",
                         bias_correction=True, subset_size=1, foreach=foreach,
                         maximize=maximize, compile=compile)
