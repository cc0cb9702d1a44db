"""Shared helpers of the bench tests: a tiny LM batch, a few steps, a small corpus."""

import torch

from snsm_workbench.train.corpora import write_smoke_corpus as write_corpus  # noqa: F401 (re-exported)

VOCAB = 64


def lm_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (2, 16), generator=g)


def take_steps(model, optimizer, steps: int = 3) -> list[float]:
    """``steps`` optimizer steps on one fixed batch; the losses before each step."""
    x = lm_batch()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses
