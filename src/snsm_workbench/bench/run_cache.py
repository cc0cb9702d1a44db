"""The run pool's cache: one JSON file per run, checked before it is used.

A cached run is used only when it is whole and is the run asked for:

* **damaged** (not JSON, a key missing, a value of the wrong type, lists of unequal length):
  :class:`DamagedRun`, whose message names the file in one line; the pool retrains it (or, when
  it may not train, reports it as missing);
* **another run** (its ``key`` is not the key of the place it sits in: a file copied into
  another configuration's place): :class:`RunMismatch`, refused;
* **other settings** (its ``identity``, the contender and harness config that made it,
  differs from the one asked for: another batch size, sequence length, vocabulary, device,
  bf16, optimizer arguments, ...): :class:`RunMismatch`, refused. A setting the saved identity
  lacks (added to the harness later) must hold its default. Runs saved before identities
  existed (the standard record's) are checked by their key and the record's ``settings.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from snsm_workbench.train.checkpoint import write_atomically
from snsm_workbench.train.config import TrainConfig

_NUMBER = (int, float)
_REQUIRED = {"steps": list, "val_loss": list, "state_bytes": int, "failed": (str, type(None)),
             "key": dict, "final_train_loss": (*_NUMBER, type(None))}
_OPTIONAL = {"train_steps": list, "step_time": list, "opt_step_times": list, "identity": dict,
             "wall_s": _NUMBER}


class DamagedRun(ValueError):
    """A cached run file that cannot be read as a run (the message names the file)."""


class RunMismatch(ValueError):
    """A cached run that is not the run its place names, or was made with other settings."""


def _problem(saved) -> str | None:
    """Why ``saved`` is not a run result, or None."""
    if not isinstance(saved, dict):
        return f"expected a JSON object, got {type(saved).__name__}"
    missing = [k for k in _REQUIRED if k not in saved]
    if missing:
        return f"missing key(s) {missing}"
    for key, kind in {**_REQUIRED, **_OPTIONAL}.items():
        value = saved.get(key)
        if key in saved and (isinstance(value, bool) or not isinstance(value, kind)):
            return f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r:.60}"
    lists = ["steps", "val_loss", "train_steps", "step_time", "opt_step_times"]
    for name in lists:
        if any(isinstance(v, bool) or not isinstance(v, _NUMBER) for v in saved.get(name, [])):
            return f"{name}: expected numbers"
    for a, b in (("steps", "val_loss"), ("train_steps", "step_time")):
        if len(saved.get(a, [])) != len(saved.get(b, [])):
            return f"{a} and {b} differ in length"
    return None


def _differences(saved: dict, wanted: dict) -> list[str]:
    """``section.field: saved != wanted`` for each field of ``wanted`` the saved identity
    holds with another value (or lacks, when ``wanted``'s is not the harness default)."""
    defaults = {"config": TrainConfig().to_dict(), "contender": {}}
    found = []
    for section, fields in wanted.items():
        old = saved.get(section, {})
        for name, value in fields.items():
            before = old.get(name, json.loads(json.dumps(defaults[section].get(name), default=str)))
            if before != value:
                found.append(f"{section}.{name}: {before!r} != {value!r}")
    return found


def read_run(path: Path, key, identity: dict | None) -> dict | None:
    """The run cached at ``path`` (None if there is none); DamagedRun or RunMismatch (one
    line naming the file) when it cannot be used for ``key`` and ``identity``."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedRun(f"{path}: damaged run file (not JSON: {exc})") from None
    problem = _problem(saved)
    if problem:
        raise DamagedRun(f"{path}: damaged run file ({problem})")
    wanted_key = json.loads(json.dumps(dataclasses.asdict(key)))
    if saved["key"] != wanted_key:
        raise RunMismatch(f"{path}: holds the run {saved['key']}, not {wanted_key} (copied from "
                          f"another configuration?); remove it or use another --out")
    if identity is not None and "identity" in saved:
        changed = _differences(saved["identity"], identity)
        if changed:
            raise RunMismatch(f"{path}: made with other settings ({'; '.join(changed[:3])}); "
                              f"use another --out")
    return saved


def write_run(path: Path, result: dict) -> None:
    """Save ``result`` at ``path`` atomically (a kill leaves the old file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result) + "\n"
    write_atomically(path, lambda f: f.write(text.encode()), "run result")
