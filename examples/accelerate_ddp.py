"""Data-parallel training with Hugging Face ``accelerate`` and an snsm optimizer.

Two processes on the CPU (DDP over gloo; the script trains on the CPU when torch sees no GPU),
then on the GPUs that ``accelerate config`` names::

    accelerate launch --multi_gpu --num_processes 2 examples/accelerate_ddp.py --cpu
    torchrun --nproc_per_node 2 examples/accelerate_ddp.py --cpu   # the same, by torchrun
    accelerate launch examples/accelerate_ddp.py --steps 200

(``accelerate launch --cpu --num_processes 2`` starts one process unless MPI is set up: it
hands CPU jobs to ``mpirun``. ``--multi_gpu`` starts the processes with torchrun, and the
script's ``--cpu`` then makes them a gloo group.) The model is a tiny
next-token predictor on a learnable pattern (each token is the one before plus one), so the loss
falls within a few steps. ``snsm.create_optimizer`` routes the model before ``prepare`` wraps it:
the ``nn.Linear`` weights get Subset-Norm and Subspace-Momentum, the embedding and the biases
AdamW's rules. DDP averages the gradients, so every rank takes the same step and the parameters
stay identical. ``--out DIR`` writes each rank's final parameters and losses there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn

import snsm

VOCAB, SEQ_LEN = 32, 16


class TinyLM(nn.Module):
    """Embedding -> MLP -> head: predicts the next token from the current one."""

    def __init__(self, vocab: int = VOCAB, hidden: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(self.embed(tokens)))


def pattern_data(count: int, seed: int = 0) -> torch.utils.data.TensorDataset:
    """``count`` sequences counting up from a random start, modulo the vocabulary."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, VOCAB, (count, 1), generator=generator)
    return torch.utils.data.TensorDataset((starts + torch.arange(SEQ_LEN)) % VOCAB)


def next_token_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    logits = model(tokens[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))


def train(args: argparse.Namespace) -> tuple[Accelerator, nn.Module, list[float]]:
    accelerator = Accelerator(cpu=args.cpu or not torch.cuda.is_available())
    torch.manual_seed(0)  # the same initial model everywhere (DDP also broadcasts rank 0's)
    model = TinyLM()
    optimizer = snsm.create_optimizer(model, "adamw_snsm", lr=args.lr, rank=8, update_gap=10,
                                      plain={"lr": args.lr / 10})
    count = args.steps * args.batch_size * accelerator.num_processes
    loader = torch.utils.data.DataLoader(pattern_data(count), batch_size=args.batch_size)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    losses = []
    for (tokens,) in loader:  # each rank gets its own batches: a global batch of batch * ranks
        loss = next_token_loss(model, tokens)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(accelerator.gather(loss.detach()).mean().item())
        accelerator.print(f"step {len(losses)}: loss {losses[-1]:.4f}")
    return accelerator, accelerator.unwrap_model(model), losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps (20)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch per process (8)")
    parser.add_argument("--lr", type=float, default=2e-2, help="lr of the Linear weights")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU (the default without a GPU)")
    parser.add_argument("--out", type=Path, help="write rank{i}.pt and rank{i}.json here")
    args = parser.parse_args(argv)
    accelerator, model, losses = train(args)
    if args.out is not None:
        rank = accelerator.process_index
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, args.out / f"rank{rank}.pt")
        report = {"losses": losses, "world_size": accelerator.num_processes,
                  "backend": str(accelerator.state.backend)}
        (args.out / f"rank{rank}.json").write_text(json.dumps(report))
    accelerator.end_training()


if __name__ == "__main__":
    main()
