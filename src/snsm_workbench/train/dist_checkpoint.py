"""Checkpoints of parallel runs through ``torch.distributed.checkpoint`` (DCP).

A checkpoint at step N is two pieces in the run folder:

* ``dcp-stepN/``: the model and optimizer state dicts, written by every rank
  (``get_state_dict``: FQN keys, DDP's ``module.`` prefix dropped; sharded
  tensors as DTensors, each shard written once, replicated tensors once);
* ``checkpoint.pt``: the rest (step, scheduler, RNG, counters, config, world
  size) and the name of its DCP folder, written atomically by rank 0 *after*
  the DCP folder is complete.

So a crash at any moment leaves ``checkpoint.pt`` naming a complete folder;
older folders are removed only after the new ``checkpoint.pt`` is in place.
DCP reshards on load: a checkpoint of N ranks loads into M ranks, or into a
single process with :func:`load_model_and_optimizer` and plain modules.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.parallel import Parallel

logger = logging.getLogger(__name__)

PREFIX = "dcp-step"


def folder_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def save(run_dir: Path, payload: dict, model: nn.Module, optimizer: torch.optim.Optimizer,
         parallel: Parallel) -> None:
    """Write ``model`` and ``optimizer`` with DCP, then ``payload`` (rank 0), then prune."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    name = folder_name(payload["step"])
    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state},
             checkpoint_id=str(run_dir / name))
    parallel.barrier()
    if parallel.is_main:
        ckpt.save_checkpoint(run_dir, {**payload, "dcp": name,
                                       "world_size": parallel.world_size})
        for old in run_dir.glob(f"{PREFIX}*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    parallel.barrier()


def load_model_and_optimizer(folder: str | Path, model: nn.Module,
                             optimizer: torch.optim.Optimizer) -> None:
    """Load a DCP folder into ``model`` and ``optimizer``, whatever their sharding.

    Without a process group (one process, plain modules) the shards of every rank
    are read and joined: the 2-ranks-to-1 reshard.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    if hasattr(optimizer, "init_state"):  # snsm optimizers: state to load into, no step
        optimizer.init_state()
    model_state, optimizer_state = get_state_dict(model, optimizer)
    with warnings.catch_warnings():  # loading into one process is what is meant here
        warnings.filterwarnings("ignore", message=".*assuming the intent is to load in a single")
        dcp.load({"model": model_state, "optimizer": optimizer_state},
                 checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=model_state,
                   optim_state_dict=optimizer_state)


def load(run_dir: Path, payload: dict, model: nn.Module, optimizer: torch.optim.Optimizer,
         parallel: Parallel) -> None:
    """Restore ``model`` and ``optimizer`` from the DCP folder ``payload`` names."""
    if "dcp" not in payload:
        raise ckpt.CheckpointError(f"checkpoint in {run_dir} is not a parallel-run checkpoint "
                                   f"(no DCP folder); resume it without --parallel")
    saved = payload.get("world_size")
    if saved != parallel.world_size:
        logger.warning("resuming a %s-rank checkpoint on %d ranks: the global batch changes "
                       "(batch_size is per rank)", saved, parallel.world_size)
    load_model_and_optimizer(run_dir / payload["dcp"], model, optimizer)
