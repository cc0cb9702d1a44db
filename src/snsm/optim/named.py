r"""The named optimizers: each is :class:`SNSM` with its momentum and step-size rules fixed.

| class        | momentum       | step size             | accumulator | bias correction |
|--------------|----------------|-----------------------|-------------|-----------------|
| AdamSN       | ema            | subset-norm           | ema         | yes             |
| AdamSNSM     | subspace       | subset-norm           | ema         | yes             |
| AdamSM       | subspace       | per coordinate        | ema         | yes             |
| AdaGradSN    | ema (b1=0.9)   | subset-norm           | sum         | no              |
| AdaGradSNSM  | subspace       | subset-norm           | sum         | no              |
| RMSpropSN    | none           | subset-norm           | ema         | no              |
| SGDSM        | subspace       | none                  | -           | no              |
| AdaGradNorm  | none           | one subset per tensor | sum         | no              |
| AdaGrad      | none           | per coordinate        | sum         | no              |
| AdamW        | ema            | per coordinate        | ema         | yes             |
| Muon         | ema, Nesterov  | orthogonalized (NS)   | none        | no              |
| MuonSN       | ema, Nesterov  | NS, then row norm     | none        | no              |
| MuonSM       | subspace       | orthogonalized (NS)   | none        | no              |
| MuonSNSM     | subspace       | NS, then row norm     | none        | no              |

The Muon family orthogonalizes matrices only (:mod:`snsm.rules.orthogonalize`); the rest
(embedding, head, norms, biases: :func:`snsm.param_groups` with ``route="hidden"``, or the
tensors of fewer than 2 dims of a plain list) gets the auxiliary rule ``aux``
(:mod:`snsm.optim.auxiliary`). Their lr is torch.optim.Muon's, in its units: the update
NS(N) has spectral norm about 1, times the shape scale sqrt(max(1, m/n)).

Each class takes ``params``, then its options in order (positional or keyword;
``state_precision="8bit"`` for all but AdaGradNorm, whose one number per tensor is not worth
quantizing), then the keyword-only ``foreach``, ``maximize``, ``compile``, ``bf16_update``
(``"stochastic"``, ``"kahan"`` or ``"nearest"``: bf16 parameters only) and
``skip_nonfinite``; :class:`SNSM` documents each. Learning rates: a Subset-Norm accumulator
sums g^2 over a subset of k coordinates, so sqrt(v) is about sqrt(k) times a per-coordinate
one; the paper uses about 10x Adam's lr for AdamSN and AdamSNSM (5e-2 against 5e-3 at
LLaMA-60M), 2x for RMSpropSN, and lr 1.0 for AdaGradSNSM.

``options`` (the constructor's hyperparameters after ``params``) and ``constructor_lr`` (its
default lr) are class attributes, set from the signature (:class:`SNSM`).
"""

from __future__ import annotations

from typing import Iterable

from torch import Tensor

from snsm.optim.auxiliary import orthogonal_groups
from snsm.optim.optimizer import SNSM
from snsm.rules.orthogonalize import DEFAULT_COEFFICIENTS

Params = Iterable[Tensor] | Iterable[dict]
Betas = tuple[float, float]


class AdamSN(SNSM):
    r"""Adam with Subset-Norm step sizes: full EMA momentum, one EMA accumulator per subset.

    :math:`p \leftarrow p - \eta \hat m / (\sqrt{\hat v_S} + \epsilon)`, with
    :math:`v_S \leftarrow \beta_2 v_S + (1 - \beta_2) \sum_{i \in S} g_i^2` per subset S.
    lr: about 10x AdamW's (the paper: 5e-2 at LLaMA-60M).
    """

    def __init__(self, params: Params, lr: float = 1e-2, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0,
                 subset_size: int | str = "heuristic", state_precision: str = "full", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="ema", accumulator="ema",
            bias_correction=True, subset_size=subset_size, state_precision=state_precision,
            foreach=foreach, maximize=maximize, compile=compile, bf16_update=bf16_update,
            skip_nonfinite=skip_nonfinite)


class AdamSNSM(SNSM):
    r"""Adam with Subset-Norm step sizes and Subspace-Momentum (the paper's AdamSNSM).

    :math:`p \leftarrow p - \eta \, (g + P^T(\hat m - P g)) / (\sqrt{\hat v_S} + \epsilon)`:
    the momentum m lives in a rank-r subspace P (refreshed every ``update_gap`` steps), the
    complement gets plain g, the denominator is AdamSN's. lr: about 10x AdamW's (5e-2).
    """

    def __init__(self, params: Params, lr: float = 1e-2, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0,
                 subset_size: int | str = "heuristic", rank: int = 128, projector: str = "svd",
                 update_gap: int = 200, on_refresh: str = "reset", seed: int = 0,
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="subspace", accumulator="ema",
            bias_correction=True, subset_size=subset_size, rank=rank, projector=projector,
            update_gap=update_gap, on_refresh=on_refresh, seed=seed,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite)


class AdamSM(SNSM):
    r"""Adam with Subspace-Momentum and a per-coordinate denominator (Subspace-Momentum
    alone: the ablation between AdamW and AdamSNSM).

    :math:`p \leftarrow p - \eta \, (g + P^T(\hat m - P g)) / (\sqrt{\hat v} + \epsilon)`,
    v per coordinate as Adam's. lr: AdamW's (1e-3 by default).
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, rank: int = 128,
                 projector: str = "svd", update_gap: int = 200, on_refresh: str = "reset",
                 seed: int = 0, state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="subspace", accumulator="ema",
            bias_correction=True, subset_size=1, rank=rank, projector=projector,
            update_gap=update_gap, on_refresh=on_refresh, seed=seed,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite)


class AdaGradSN(SNSM):
    r"""AdaGrad with Subset-Norm step sizes and EMA momentum (beta1 = 0.9, no bias
    correction).

    :math:`p \leftarrow p - \eta m / (\sqrt{v_S} + \epsilon)`, with
    :math:`v_S \leftarrow v_S + \sum_{i \in S} g_i^2`. lr: about 1e-1.
    """

    def __init__(self, params: Params, lr: float = 1e-1, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0,
                 subset_size: int | str = "heuristic", state_precision: str = "full", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="ema", accumulator="sum",
            bias_correction=False, subset_size=subset_size, state_precision=state_precision,
            foreach=foreach, maximize=maximize, compile=compile, bf16_update=bf16_update,
            skip_nonfinite=skip_nonfinite)


class AdaGradSNSM(SNSM):
    r"""AdaGrad with Subset-Norm step sizes and Subspace-Momentum (no bias correction).

    :math:`p \leftarrow p - \eta \, (g + P^T(m - P g)) / (\sqrt{v_S} + \epsilon)`, with
    AdaGradSN's summed v_S. lr: about 1.0 (the paper's).
    """

    def __init__(self, params: Params, lr: float = 1.0, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0,
                 subset_size: int | str = "heuristic", rank: int = 128, projector: str = "svd",
                 update_gap: int = 200, on_refresh: str = "reset", seed: int = 0,
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="subspace", accumulator="sum",
            bias_correction=False, subset_size=subset_size, rank=rank, projector=projector,
            update_gap=update_gap, on_refresh=on_refresh, seed=seed,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite)


class RMSpropSN(SNSM):
    r"""RMSprop with Subset-Norm step sizes: no momentum, EMA accumulator, no bias
    correction.

    :math:`p \leftarrow p - \eta g / (\sqrt{v_S} + \epsilon)`, with AdamSN's EMA v_S.
    lr: about 2x RMSprop's (the paper: 1e-2 at LLaMA-60M).
    """

    def __init__(self, params: Params, lr: float = 2e-3, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0,
                 subset_size: int | str = "heuristic", state_precision: str = "full", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="none", accumulator="ema",
            bias_correction=False, subset_size=subset_size, state_precision=state_precision,
            foreach=foreach, maximize=maximize, compile=compile, bf16_update=bf16_update,
            skip_nonfinite=skip_nonfinite)


class SGDSM(SNSM):
    r"""SGD with Subspace-Momentum: momentum in a rank-r subspace, plain SGD in its
    complement.

    :math:`p \leftarrow p - \eta \, (g + P^T(m - P g))` (betas[0] is the momentum's beta;
    betas[1] is unused). lr: an SGD lr (about 1e-1 on small models).
    """

    def __init__(self, params: Params, lr: float = 1e-2, betas: Betas = (0.9, 0.999),
                 weight_decay: float = 0.0, rank: int = 128, projector: str = "svd",
                 update_gap: int = 200, on_refresh: str = "reset", seed: int = 0,
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, 0.0, weight_decay, momentum="subspace", accumulator="none",
            bias_correction=False, rank=rank, projector=projector, update_gap=update_gap,
            on_refresh=on_refresh, seed=seed, state_precision=state_precision,
            foreach=foreach, maximize=maximize, compile=compile, bf16_update=bf16_update,
            skip_nonfinite=skip_nonfinite)


class AdaGradNorm(SNSM):
    r"""AdaGrad-Norm: one accumulated squared norm per tensor, no momentum.

    :math:`p \leftarrow p - \eta g / (\sqrt{v} + \epsilon)`, with
    :math:`v \leftarrow v + \|g\|^2` per tensor. lr: about 1e-1.
    """

    def __init__(self, params: Params, lr: float = 1e-1, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, eps=eps, weight_decay=weight_decay, momentum="none",
            accumulator="sum", bias_correction=False, subset_size="tensor", foreach=foreach,
            maximize=maximize, compile=compile, bf16_update=bf16_update,
            skip_nonfinite=skip_nonfinite)


class AdaGrad(SNSM):
    r"""Per-coordinate AdaGrad (equals ``torch.optim.Adagrad`` without weight decay).

    :math:`p \leftarrow p - \eta g / (\sqrt{v} + \epsilon)`, with
    :math:`v \leftarrow v + g^2` per coordinate. lr: torch's Adagrad default, 1e-2.
    """

    def __init__(self, params: Params, lr: float = 1e-2, eps: float = 1e-10,
                 weight_decay: float = 0.0, state_precision: str = "full", *,
                 foreach: bool | None = None, maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            params, lr, eps=eps, weight_decay=weight_decay, momentum="none",
            accumulator="sum", bias_correction=False, subset_size=1,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite)


class AdamW(SNSM):
    r"""Per-coordinate AdamW (equals ``torch.optim.AdamW``, with its defaults), the baseline
    of the family.

    :math:`p \leftarrow p (1 - \eta \lambda) - \eta \hat m / (\sqrt{\hat v} + \epsilon)`.
    lr: torch's default, 1e-3; weight decay: torch's default, 1e-2.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: Betas = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, state_precision: str = "full",
                 *, foreach: bool | None = None, maximize: bool = False,
                 compile: bool = False, bf16_update: str = "stochastic",
                 skip_nonfinite: bool = False):
        super().__init__(
            params, lr, betas, eps, weight_decay, momentum="ema", accumulator="ema",
            bias_correction=True, subset_size=1, state_precision=state_precision,
            foreach=foreach, maximize=maximize, compile=compile, bf16_update=bf16_update,
            skip_nonfinite=skip_nonfinite)


class Muon(SNSM):
    r"""Muon: Newton-Schulz-orthogonalized EMA momentum on matrices, an auxiliary rule elsewhere
    (equals ``torch.optim.Muon`` on the matrices, with its defaults).

    :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`, :math:`N = g.\mathrm{lerp}(m, \beta_1)`
    (Nesterov) or m, :math:`p \leftarrow p (1 - \eta \lambda) - \eta \sqrt{\max(1, m/n)}
    \, \mathrm{NS}_5(N)` (``shape_scale``; no bias correction). betas[0] is Muon's momentum
    (betas[1] is the second moment's of MuonSN). lr: torch.optim.Muon's, 1e-3 by default
    (about 2e-2 is common for LLMs); ``aux``: ``"adamw"``, ``"adamw_8bit"`` or ``"sn_8bit"``.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: Betas = (0.95, 0.95),
                 eps: float = 1e-7, weight_decay: float = 0.1, nesterov: bool = True,
                 ns_steps: int = 5, ns_coefficients: tuple = DEFAULT_COEFFICIENTS,
                 ns_dtype: str = "bfloat16", shape_scale: str = "original", aux: str = "adamw",
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            orthogonal_groups(params, aux, state_precision), lr, betas, eps, weight_decay,
            momentum="ema", accumulator="none", bias_correction=False,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite,
            nesterov=nesterov, orthogonalize=True, ns_steps=ns_steps,
            ns_coefficients=ns_coefficients, ns_dtype=ns_dtype, shape_scale=shape_scale)


class MuonSN(SNSM):
    r"""Muon with a Subset-Norm second moment after the orthogonalization (NorMuon-like).

    O = NS(N) as Muon's; :math:`v_i \leftarrow \beta_2 v_i + (1 - \beta_2)\,
    \mathrm{mean}_j O_{ij}^2` per row i (``normalize``: ``"row"``, ``"column"`` or
    ``"heuristic"``), :math:`O' = O / (\sqrt{v} + \epsilon)` rescaled to
    :math:`\|O\|_F`; state O(m) per matrix beside the momentum. lr: Muon's.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: Betas = (0.95, 0.95),
                 eps: float = 1e-7, weight_decay: float = 0.1, nesterov: bool = True,
                 normalize: str = "row", ns_steps: int = 5,
                 ns_coefficients: tuple = DEFAULT_COEFFICIENTS, ns_dtype: str = "bfloat16",
                 shape_scale: str = "original", aux: str = "adamw",
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            orthogonal_groups(params, aux, state_precision), lr, betas, eps, weight_decay,
            momentum="ema", accumulator="none", bias_correction=False,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite,
            nesterov=nesterov, orthogonalize=True, ns_steps=ns_steps,
            ns_coefficients=ns_coefficients, ns_dtype=ns_dtype, shape_scale=shape_scale,
            normalize=normalize)


class MuonSM(SNSM):
    r"""Muon with Subspace-Momentum: the momentum of each matrix lives in a rank-r subspace.

    :math:`N = g + P^T(\hat m - P g)` (``complement="gradient"``), :math:`P^T \hat m`
    (``"none"``) or :math:`P^T \hat m + e`, e an 8-bit EMA of the complement (``"buffer"``:
    1 byte per element; :mod:`snsm.rules.momentum`), with Nesterov :math:`\hat m = P g.\mathrm{lerp}(m, \beta_1)`; then Muon's
    :math:`p \leftarrow p (1 - \eta \lambda) - \eta \sqrt{\max(1, m/n)}\,
    \mathrm{NS}_5(N)`. P refreshes every ``update_gap`` steps (``on_refresh="project"``
    carries m into the new basis). lr: Muon's.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: Betas = (0.95, 0.95),
                 eps: float = 1e-7, weight_decay: float = 0.1, nesterov: bool = True,
                 rank: int = 128, projector: str = "svd", update_gap: int = 100,
                 on_refresh: str = "project", complement: str = "gradient", seed: int = 0,
                 ns_steps: int = 5, ns_coefficients: tuple = DEFAULT_COEFFICIENTS,
                 ns_dtype: str = "bfloat16", shape_scale: str = "original", aux: str = "adamw",
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            orthogonal_groups(params, aux, state_precision), lr, betas, eps, weight_decay,
            momentum="subspace", accumulator="none", bias_correction=False, rank=rank,
            projector=projector, update_gap=update_gap, on_refresh=on_refresh, seed=seed,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite,
            nesterov=nesterov, complement=complement, orthogonalize=True, ns_steps=ns_steps,
            ns_coefficients=ns_coefficients, ns_dtype=ns_dtype, shape_scale=shape_scale)


class MuonSNSM(SNSM):
    r"""Muon with Subspace-Momentum and the Subset-Norm second moment after the
    orthogonalization: MuonSM's N, MuonSN's normalized NS(N). lr: Muon's.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: Betas = (0.95, 0.95),
                 eps: float = 1e-7, weight_decay: float = 0.1, nesterov: bool = True,
                 normalize: str = "row", rank: int = 128, projector: str = "svd",
                 update_gap: int = 100, on_refresh: str = "project",
                 complement: str = "gradient", seed: int = 0, ns_steps: int = 5,
                 ns_coefficients: tuple = DEFAULT_COEFFICIENTS, ns_dtype: str = "bfloat16",
                 shape_scale: str = "original", aux: str = "adamw",
                 state_precision: str = "full", *, foreach: bool | None = None,
                 maximize: bool = False, compile: bool = False,
                 bf16_update: str = "stochastic", skip_nonfinite: bool = False):
        super().__init__(
            orthogonal_groups(params, aux, state_precision), lr, betas, eps, weight_decay,
            momentum="subspace", accumulator="none", bias_correction=False, rank=rank,
            projector=projector, update_gap=update_gap, on_refresh=on_refresh, seed=seed,
            state_precision=state_precision, foreach=foreach, maximize=maximize,
            compile=compile, bf16_update=bf16_update, skip_nonfinite=skip_nonfinite,
            nesterov=nesterov, complement=complement, orthogonalize=True, ns_steps=ns_steps,
            ns_coefficients=ns_coefficients, ns_dtype=ns_dtype, shape_scale=shape_scale,
            normalize=normalize)
