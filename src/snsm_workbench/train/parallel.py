"""Data parallelism for ``snsm train --parallel ddp|fsdp``, launched by torchrun.

    torchrun --nproc_per_node=N -m snsm train --parallel fsdp ...

Each of the N processes (ranks) builds the same model from the seed, then

* ``ddp``: wraps it in ``DistributedDataParallel`` (gradients all-reduced, every
  rank holds the whole model and optimizer state);
* ``fsdp``: shards it with FSDP2, ``fully_shard`` on every decoder layer and on
  the root: parameters, gradients and optimizer state are DTensors sharded on
  dim 0 (see :mod:`snsm.optim.sharding` for how the optimizers step on them).

Rank r reads its own batches (``get_batch(..., rank=r, world_size=N)``), so the
global batch is ``batch_size * grad_accum * N`` sequences. The backend is nccl
on CUDA (one device per local rank) and gloo on CPU. Only rank 0 writes the
config, metrics and plots; checkpoints go through ``torch.distributed.checkpoint``
(:mod:`snsm_workbench.train.dist_checkpoint`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

MODES = ("none", "ddp", "fsdp")


@dataclass
class Parallel:
    """This process's place in the run: mode, rank, world size and device."""

    mode: str = "none"
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (e.g. building a cache), then the other ranks."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def broadcast(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (one all-reduce; ``value`` itself when alone)."""
        if not self.enabled:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item() / self.world_size

    def max(self, value: int) -> int:
        """The largest ``value`` over the ranks (one all-reduce; ``value`` itself when alone),
        e.g. the signal a rank received, so that every rank stops after the same step."""
        if not self.enabled:
            return value
        top = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        return int(top.item())

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` (already on ``device``) for this mode: as is, under DDP, or sharded."""
        if self.mode == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DistributedDataParallel(model, device_ids=ids)
        if self.mode == "fsdp":
            from torch.distributed.fsdp import fully_shard

            for layer in decoder_layers(model):
                fully_shard(layer)
            fully_shard(model)
        return model

    def close(self) -> None:
        """Destroy the process group this object created."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a causal LM (``model.model.layers``), else none."""
    return list(getattr(getattr(model, "model", model), "layers", []))


def unwrap(model: nn.Module) -> nn.Module:
    """The module DDP wraps (routing and state dicts see the original names)."""
    return getattr(model, "module", model)


def scalar(value: torch.Tensor) -> float:
    """A float from a tensor or DTensor (e.g. the norm ``clip_grad_norm_`` returns)."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    return value.item()


DEVICES = ("auto", "cpu", "cuda")


def use_cuda(device: str) -> bool:
    """Whether ``device`` (``"auto"``, ``"cpu"`` or ``"cuda"``) means CUDA here: ``"auto"``
    takes it when torch sees a GPU; ValueError for ``"cuda"`` without one, or another name."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        built = "a torch built without CUDA" if torch.version.cuda is None else "no GPU visible"
        raise ValueError(f"device='cuda' but CUDA is not available ({built}, torch "
                         f"{torch.__version__}); use --device cpu or auto")
    return device == "cuda" or (device == "auto" and available)


def start(mode: str, device: str = "auto") -> Parallel:
    """Join the torchrun process group for ``mode`` (``"none"``: a single process), on
    ``device`` (:func:`use_cuda`)."""
    if mode not in MODES:
        raise ValueError(f"parallel must be one of {', '.join(MODES)}, got {mode!r}")
    cuda = use_cuda(device)
    if mode == "none":
        return Parallel(device=torch.device("cuda" if cuda else "cpu"))
    if not dist.is_available():
        raise ValueError(f"--parallel {mode} needs a torch built with torch.distributed")
    if "WORLD_SIZE" not in os.environ and not dist.is_initialized():
        raise ValueError(f"--parallel {mode} runs under torchrun (WORLD_SIZE is not set): "
                         f"torchrun --nproc_per_node=N -m snsm train --parallel {mode} ...")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    parallel = Parallel(mode, dist.get_rank(), dist.get_world_size(), device, owns)
    logger.info("rank %d of %d, %s, device %s", parallel.rank, parallel.world_size, mode, device)
    return parallel
