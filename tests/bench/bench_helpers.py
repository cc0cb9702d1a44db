"""Shared helpers of the bench tests: a tiny LM batch, a few steps, a small corpus."""

import torch

VOCAB = 64
WORDS = ("thou art the king of night and day whose crown is made of stars and rain "
         "my lord the queen hath sent for thee to speak of love and war ").split()


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


def write_corpus(path, documents=6, words=1500):
    """A small deterministic text corpus: one file per document."""
    path.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        text = " ".join(WORDS[(i * 7 + d * 3) % len(WORDS)] for i in range(words))
        (path / f"doc{d}.txt").write_text("\n".join(text[i:i + 70]
                                                    for i in range(0, len(text), 70)))
    return path
