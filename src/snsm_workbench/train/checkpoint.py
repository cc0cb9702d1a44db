"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint holds the model, optimizer and scheduler state dicts, the RNG
states, the data position (the next step; batches are a pure function of the
step) and the run's counters. It is written to a temporary file in the run
folder, flushed to disk, then renamed over ``checkpoint.pt``: a crash at any
moment leaves the previous checkpoint intact. A write that fails (disk full, no
permission) removes its temporary file and raises OSError saying what could not be
written and why; files left by a process killed mid-write (``.NAME.PID.tmp``) are
removed by :func:`remove_leftovers` when the next run on the folder starts.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

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


_LEFTOVER = re.compile(r"^\..+\.\d+\.tmp$")  # the temporary files of write_atomically


def is_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`write_atomically`."""
    return bool(_LEFTOVER.match(name))


class _Recorder:
    """A binary file wrapper that remembers the OSError of a failed write (torch may report
    it as a RuntimeError of its own, such as "unexpected pos")."""

    def __init__(self, handle):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def write_atomically(path: str | Path, write: Callable[[Any], None], what: str = "file") -> Path:
    """Call ``write(binary file)`` on a temporary file beside ``path``, flush it to disk, then
    rename it over ``path``. On failure the temporary file is removed and an OSError names
    ``what``, the path and the reason (No space left on device, Permission denied, ...)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    recorder = None
    try:
        with open(tmp, "wb") as handle:
            recorder = _Recorder(handle)
            write(recorder)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        error = (recorder.error if recorder is not None else None) or exc
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            raise OSError(error.errno, f"cannot write the {what} {path}: {reason}") from exc
        raise
    return path


def remove_leftovers(run_dir: str | Path) -> list[Path]:
    """Remove the temporary files a killed process left in ``run_dir``; returns them."""
    removed = [p for p in Path(run_dir).iterdir() if p.is_file() and _LEFTOVER.match(p.name)]
    for path in removed:
        path.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted write", path)
    return removed


def save_checkpoint(run_dir: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) atomically to ``run_dir/checkpoint.pt``."""
    path = Path(run_dir) / CHECKPOINT_NAME
    write_atomically(path, lambda handle: torch.save({"format": FORMAT_VERSION, **payload},
                                                     handle), "checkpoint")
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
