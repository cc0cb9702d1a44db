"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint holds the model, optimizer and scheduler state dicts, the RNG
states, the data position (the next step; batches are a pure function of the
step) and the run's counters. It is written to a temporary file in the run
folder, flushed to disk, then renamed over ``checkpoint.pt``: a crash at any
moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1
# Config keys that must match for a checkpoint to be resumed.
IDENTITY_KEYS = ("preset", "optimizer", "optimizer_args", "vocab_size", "seq_len", "batch_size",
                 "grad_accum", "seed", "data", "hf_dataset", "hf_config")


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or from another run."""


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) atomically to ``run_dir/checkpoint.pt``."""
    path = Path(run_dir) / CHECKPOINT_NAME
    tmp = path.with_name(f".{CHECKPOINT_NAME}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        torch.save({"format": FORMAT_VERSION, **payload}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    logger.debug("checkpoint written: %s (step %s)", path, payload.get("step"))
    return path


def load_checkpoint(run_dir: str | Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``run_dir/checkpoint.pt``; CheckpointError if missing, corrupt or mismatched.

    With ``config``, the checkpoint's identity keys (model, optimizer, data,
    batch shape, seed) must equal the config's.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: "
                              f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has an unknown format "
                              f"(expected format {FORMAT_VERSION})")
    if config is not None:
        saved = payload.get("config", {})
        differing = {k: (saved.get(k), config.get(k)) for k in IDENTITY_KEYS
                     if saved.get(k) != config.get(k)}
        if differing:
            details = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}"
                                for k, (a, b) in differing.items())
            raise CheckpointError(f"checkpoint {path} belongs to another run ({details})")
    return payload
