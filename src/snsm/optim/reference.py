r"""AdamSNSM as one readable loop, beside the paper: the reference the fast paths are held to.

Nguyen & Nguyen, "Lean and Mean Adaptive Optimization via Subset-Norm and Subspace-Momentum
with Convergence Guarantees" (ICML 2025). Float32 parameters only, one tensor at a time: no
foreach, compile, 8-bit state, bf16 rounding or sharding. ``snsm.AdamSNSM`` (projector
``"svd"``, ``on_refresh="reset"``, ``subset_size="heuristic"``) equals it bit for bit, on
its single-tensor and foreach paths (tests/test_reference.py).

For a matrix parameter W with gradient G (m x n; a tensor of more dims is viewed as
(shape[0], rest)) at its step t, with s = min(m, n), r = min(rank, s), gap = update_gap:

1. Projector, rebuilt from G on steps 1, 1 + gap, 1 + 2 gap, ...: Q (s x r) holds the top-r
   left singular vectors of A = G^T if m >= n ("tall"), A = G if m < n ("wide"), so
   P(G) = G Q (m x r), P^T(X) = X Q^T (tall) and P(G) = Q^T G (r x n), P^T(X) = Q X (wide).
   The momentum restarts at zero on every refresh.
2. Subspace-Momentum, with tau = (t - 1) mod gap + 1 the steps since that restart:
       M <- b1 M + (1 - b1) P(G),   M_hat = M / (1 - b1^tau),   N = G + P^T(M_hat - P(G)),
   momentum in span(Q), the plain gradient in its orthogonal complement.
3. Subset-Norm ("heuristic" subsets): one subset per index of the larger side, holding its s
   entries along the smaller one (tall: rows, v is m x 1; wide: columns, v is 1 x n). Each
   v_i is an EMA of the subset's SUM of squares (not its mean):
       v_i <- b2 v_i + (1 - b2) ||G_i||^2,   D_i = sqrt(v_i) / sqrt(1 - b2^t) + eps.
4. Decoupled weight decay, then the step:   W <- W (1 - lr wd) - lr N / D.

Every other tensor (vectors, scalars, and all of a group with ``use_snsm=False``) gets AdamW:
m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, and
p <- p (1 - lr wd) - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).

EMAs are written ``lerp_`` and denominators ``sqrt(v) / c + eps`` because the library
computes them so: the same operations in the same order give the same bits.
"""

from __future__ import annotations

import torch
from torch import Tensor


class AdamSNSMReference(torch.optim.Optimizer):
    """AdamSNSM (SVD projector, momentum reset on refresh, heuristic subsets), unoptimized."""

    def __init__(self, params, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, rank: int = 128,
                 update_gap: int = 200, use_snsm: bool = True):
        if rank < 1 or update_gap < 1:
            raise ValueError(f"rank and update_gap must be >= 1, got {rank} and {update_gap}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      rank=rank, update_gap=update_gap, use_snsm=use_snsm))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.dtype != torch.float32:
                    raise ValueError(f"the reference is float32 only, got a {p.dtype} parameter")
                matrix = group["use_snsm"] and p.dim() >= 2 and p.numel() > 0
                (matrix_step if matrix else adamw_step)(p, p.grad, self.state[p], group)
        return loss


def matrix_step(p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
    """Steps 1-4 of the module docstring for one matrix parameter."""
    (b1, b2), lr, gap = group["betas"], group["lr"], group["update_gap"]
    w = p.view(p.shape[0], -1)  # W, m x n
    g = grad.reshape(w.shape)  # G
    (m, n), tall = w.shape, w.shape[0] >= w.shape[1]
    state["step"] = t = state.get("step", 0) + 1
    if (t - 1) % gap == 0:  # 1. a new projector; the momentum restarts at zero
        r = min(group["rank"], m, n)
        u = torch.linalg.svd(g.T if tall else g, full_matrices=False).U
        state["basis"] = u[:, :r].contiguous()  # a copy of s x r: U itself is s x s
        state["momentum"] = torch.zeros((m, r) if tall else (r, n), device=p.device)
        state.setdefault("subset_v", torch.zeros((m, 1) if tall else (1, n), device=p.device))
    q = state["basis"]
    low = g @ q if tall else q.T @ g  # P(G)
    momentum = state["momentum"].lerp_(low, 1 - b1)  # 2. M <- b1 M + (1 - b1) P(G)
    m_hat = momentum / (1 - b1 ** ((t - 1) % gap + 1))  # bias correction over tau steps
    numer = torch.addmm(g, m_hat - low, q.T) if tall else torch.addmm(g, q, m_hat - low)
    squares = torch.linalg.vector_norm(g, dim=1 if tall else 0, keepdim=True).square()
    v = state["subset_v"].mul_(b2).add_(squares, alpha=1 - b2)  # 3. one v per subset
    denom = v.sqrt() / (1 - b2**t) ** 0.5 + group["eps"]  # D, broadcast over each subset
    p.mul_(1 - lr * group["weight_decay"])  # 4. decoupled weight decay
    w.addcdiv_(numer, denom, value=-lr)  # W <- W - lr N / D


def adamw_step(p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
    """Per-coordinate AdamW for every tensor that is not a matrix of the SNSM group."""
    (b1, b2), lr = group["betas"], group["lr"]
    if not state:
        state.update(step=0, momentum=torch.zeros_like(p), v=torch.zeros_like(p))
    state["step"] = t = state["step"] + 1
    state["momentum"].lerp_(grad, 1 - b1)  # m <- b1 m + (1 - b1) g
    state["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)  # v <- b2 v + (1 - b2) g^2
    denom = state["v"].sqrt() / (1 - b2**t) ** 0.5 + group["eps"]
    p.mul_(1 - lr * group["weight_decay"])
    p.addcdiv_(state["momentum"], denom, value=-(lr / (1 - b1**t)))
