"""Checkpoints of parallel runs through ``torch.distributed.checkpoint`` (DCP).

A checkpoint at step N is two pieces in the run folder:

* ``dcp-stepN/``: the model and optimizer state dicts, written by every rank
  (``get_state_dict``: FQN keys, DDP's ``module.`` prefix dropped; sharded
  tensors as DTensors, each shard written once, replicated tensors once);
* ``checkpoint.pt``: the rest (step, scheduler, RNG, counters, config, world
  size) and the name of its DCP folder, written atomically by rank 0 *after*
  the DCP folder is complete.

So a crash at any moment leaves ``checkpoint.pt`` naming a complete folder;
older folders are removed only after the new ``checkpoint.pt`` is in place, and a folder
it does not name (a save killed midway) when the next run on the folder starts
(:func:`remove_unnamed`). A save that fails (disk full) removes its folder and raises
one line (an OSError naming the folder and the reason).
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
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.state_dict import get_state_dict

    name = folder_name(payload["step"])
    model_state, optimizer_state = get_state_dict(model, optimizer)
    try:
        dcp.save({"model": model_state, "optimizer": optimizer_state},
                 checkpoint_id=str(run_dir / name))
    except CheckpointException as exc:  # every rank gets it
        if parallel.is_main:
            shutil.rmtree(run_dir / name, ignore_errors=True)
        raise _one_line(exc, run_dir / name) from None
    parallel.barrier()
    if parallel.is_main:
        ckpt.save_checkpoint(run_dir, {**payload, "dcp": name,
                                       "world_size": parallel.world_size})
        for old in run_dir.glob(f"{PREFIX}*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    parallel.barrier()


def _one_line(exc: BaseException, folder: Path) -> Exception:
    """The error of a failed DCP save in one line: an OSError of a rank (disk full, no
    permission) with its errno, naming the folder; otherwise the first failure's message."""
    failures = [failure[0] if isinstance(failure, tuple) else failure
                for failure in getattr(exc, "failures", {}).values()]
    for error in failures:
        if isinstance(error, OSError):
            return OSError(error.errno, f"cannot write the checkpoint {folder}: "
                                        f"{error.strerror or error}")
    first = failures[0] if failures else exc
    return RuntimeError(f"cannot write the checkpoint {folder}: {type(first).__name__}: "
                        f"{' '.join(str(first).split())[:200]}")


def remove_unnamed(run_dir: Path) -> list[Path]:
    """Remove the DCP folders of ``run_dir`` that its ``checkpoint.pt`` does not name
    (incomplete: the process was killed while writing them, or before naming them); all of
    them when there is no checkpoint. Nothing is removed beside a damaged checkpoint (its
    resume reports it). Returns the folders removed."""
    folders = [p for p in Path(run_dir).glob(f"{PREFIX}*") if p.is_dir()]
    named = None
    if folders and (Path(run_dir) / ckpt.CHECKPOINT_NAME).is_file():
        try:
            named = ckpt.load_checkpoint(run_dir).get("dcp")
        except ckpt.CheckpointError:
            return []
    removed = [p for p in folders if p.name != named]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
        logger.info("removed %s, an incomplete checkpoint left by an interrupted save", folder)
    return removed


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
