"""Small seeded problems and gradient streams shared by the tests (no global RNG)."""

from __future__ import annotations

import torch
from torch import nn

import snsm

SHAPES = [(8, 6), (6, 10), (3, 4, 5), (7,), ()]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_params(device="cpu", dtype=torch.float32, shapes=SHAPES, seed: int = 0):
    gen = generator(seed)
    return [torch.randn(shape, generator=gen).to(device, dtype).requires_grad_()
            for shape in shapes]


def clone_params(params):
    return [p.detach().clone().requires_grad_() for p in params]


def grad_stream(params, steps: int, seed: int = 1):
    """A fixed list, per step, of random gradients for ``params``."""
    gen = generator(seed)
    return [[torch.randn(p.shape, generator=gen).to(p.device, p.dtype) for p in params]
            for _ in range(steps)]


def run(optimizer, params, grads) -> None:
    """Step ``optimizer`` once per entry of ``grads``."""
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        optimizer.step()


def quadratic(device="cpu"):
    """f(W, b) = ||A (W - W*)||^2 + ||b - b*||^2, an ill-conditioned convex quadratic."""
    gen = generator(3)
    a = torch.diag(torch.linspace(0.5, 2.0, 8)) + 0.1 * torch.randn(8, 8, generator=gen)
    w_star = torch.randn(8, 6, generator=gen)
    b_star = torch.randn(6, generator=gen)
    a, w_star, b_star = a.to(device), w_star.to(device), b_star.to(device)
    params = [torch.zeros(8, 6, device=device, requires_grad=True),
              torch.zeros(6, device=device, requires_grad=True)]

    def loss_fn():
        w, b = params
        return (a @ (w - w_star)).square().sum() + (b - b_star).square().sum()

    return params, loss_fn


def rosenbrock(device="cpu"):
    """Rows of W (4 x 2) are independent Rosenbrock pairs: sum (1 - x)^2 + 100 (y - x^2)^2."""
    start = torch.tensor([[-1.5, 2.0], [-1.0, 1.5], [1.5, 1.0], [0.0, -1.0]], device=device)
    params = [start.clone().requires_grad_()]

    def loss_fn():
        x, y = params[0][:, 0], params[0][:, 1]
        return ((1 - x).square() + 100 * (y - x.square()).square()).sum()

    return params, loss_fn


def descend(optimizer, params, loss_fn, steps: int) -> tuple[float, float]:
    """Initial and final loss after ``steps`` steps."""
    first = loss_fn().item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    return first, loss_fn().item()


class TinyLM(nn.Module):
    def __init__(self, tie: bool = False):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 50, bias=False)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        if tie:
            self.head = nn.Linear(16, 50, bias=False)
            self.head.weight = self.embed.weight


def small_model(device):
    """Embedding, two Linears of both orientations and a norm, from a private generator."""
    model = nn.Sequential(nn.Embedding(10, 12), nn.Linear(12, 20), nn.LayerNorm(20),
                          nn.Linear(20, 8)).to(device)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator).mul_(0.1))
    return model


def train_scheduled(name, hparams, device, compile, steps: int = 4):
    """STEPS steps on fixed random gradients, the lr changing every step (a scheduler)."""
    model = small_model(device)
    optimizer = snsm.create_optimizer(model, name, compile=compile, foreach=False, **hparams)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step))
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for param in model.parameters():
            param.grad = torch.randn(param.shape, generator=generator).to(device)
        optimizer.step()
        scheduler.step()
    return model, optimizer
