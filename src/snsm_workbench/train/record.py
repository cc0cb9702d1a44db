"""The run record: ``config.json`` in a run folder, read and written.

Its keys: ``config`` (the run's :class:`~snsm_workbench.train.config.TrainConfig` as a dict,
derived values ``None``), ``versions`` (of :data:`VERSIONED`), ``model_parameters``, ``data``
(the token statistics and the corpus fingerprint), ``device``, ``world_size``, and when set
``optimizer_factory`` (the hook's name) and ``resumes`` (one entry per resume that changed a
setting: ``{"step": N, "changed": {key: [old, new]}}``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.checkpoint import CheckpointError
from snsm_workbench.train.config import TrainConfig, config_from_dict
from snsm_workbench.util.environment import package_versions

CONFIG_NAME = "config.json"  # the run record in a run folder: {"config": {...}, ...}
VERSIONED = ("snsm", "torch", "transformers", "tokenizers", "numpy")  # in config.json


def new_record(config: TrainConfig, model_parameters: int, data_stats: dict, device: str,
               world_size: int, optimizer_factory: Any = None) -> dict[str, Any]:
    """The record a new run starts with."""
    record = {"config": config.to_dict(), "versions": package_versions(VERSIONED),
              "model_parameters": model_parameters, "data": data_stats, "device": device,
              "world_size": world_size}
    if optimizer_factory is not None:
        record["optimizer_factory"] = getattr(optimizer_factory, "name", repr(optimizer_factory))
    return record


def write_run_record(run_dir: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write ``record`` as ``run_dir/config.json``, atomically."""
    text = json.dumps(record, indent=2, default=str)
    ckpt.write_atomically(Path(run_dir) / CONFIG_NAME, lambda h: h.write(text.encode()),
                          "run record")


def read_run_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` record of run folder ``run_dir``; CheckpointError (one line naming
    the file) when it is missing, unreadable or not a record with a ``config`` table."""
    path = Path(run_dir) / CONFIG_NAME
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"cannot resume {run_dir}: no such folder")
    if not path.is_file():
        raise CheckpointError(f"cannot resume {run_dir}: no {CONFIG_NAME} there (not a run "
                              f"folder)")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(f"cannot resume {run_dir}: cannot read {path}: "
                              f"{exc.strerror or exc}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"cannot resume {run_dir}: {path} is corrupt (not JSON: "
                              f"{exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise CheckpointError(f"cannot resume {run_dir}: {path} is corrupt (no 'config' "
                              f"table)")
    return record


def is_run_record(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` is the record of an snsm run: JSON with a ``config``
    table and the ``versions`` table naming snsm (what :func:`new_record` writes)."""
    try:
        record = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and isinstance(record.get("config"), dict)
            and isinstance(record.get("versions"), dict) and "snsm" in record["versions"])


def read_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The saved settings of run folder ``run_dir`` (errors name its ``config.json``)."""
    path = Path(run_dir) / CONFIG_NAME
    try:
        return config_from_dict(read_run_record(run_dir)["config"])
    except CheckpointError:
        raise
    except ValueError as exc:
        raise CheckpointError(f"cannot resume {run_dir}: {path} is corrupt ({exc})") from None
