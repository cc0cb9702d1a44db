"""Resume policy: which settings a resumed run may change, and the record of what changed.

Resuming (``--resume RUN``): the run's saved settings (``RUN/config.json``) are the base.
Only ``RESUME_CHANGEABLE`` settings may differ: ``steps`` (larger only; the warmup+cosine
schedule is then extended as ``extend_schedule`` says: ``continue``, the default, goes on from
the resumed step's lr to the floor at the new last step, with no jump; ``rebuild`` follows the
schedule of a run planned for the new total: :mod:`snsm_workbench.train.schedule`),
``extend_schedule``, ``eval_every``, ``save_every`` and ``quiet``. Any other setting given with
a different value is refused with :class:`~snsm_workbench.util.errors.ConflictError` naming the
flag, the value given and the saved one (:func:`resume_config`). Derived settings compare as
resolved (:mod:`snsm_workbench.train.run_config`): ``--lr`` equal to the optimizer's harness lr
is no change. From Python, every field given explicitly counts, equal to its default or not
(:func:`resume_changes`). A ``config.json`` edited by hand since the checkpoint (a setting that
cannot change differs from the checkpoint's) is refused (:func:`check_record_unedited`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

from snsm_workbench.train.config import LEAN_OPTION_FLAGS, TrainConfig, typed_settings, validate
from snsm_workbench.train.checkpoint import CheckpointError
from snsm_workbench.train.record import CONFIG_NAME, read_run_config
from snsm_workbench.train.run_config import RESOLVED_FIELDS, resolve
from snsm_workbench.util.errors import ConflictError

# Settings a resumed run may change (steps: only to a larger value).
RESUME_CHANGEABLE = ("steps", "extend_schedule", "eval_every", "save_every", "quiet")
# Settings of the record that say where a run is, not what it is (free to differ).
_PLACE = ("out", "resume", "cache_dir")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _same_folder(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _optimizer_arg_conflicts(saved: TrainConfig, given: Mapping[str, Any]) -> list[str]:
    """One phrase per optimizer argument of ``given`` that differs from ``saved``'s."""
    conflicts = []
    for key, value in given.items():
        if key not in saved.optimizer_args or saved.optimizer_args[key] != value:
            was = (f"{key}={saved.optimizer_args[key]}" if key in saved.optimizer_args
                   else f"no {key}")
            flag = LEAN_OPTION_FLAGS.get(key)
            phrase = f"--opt {key}={value}" if flag is None else f"{flag} {value} (--opt {key})"
            conflicts.append(f"{phrase} (saved: {was})")
    return conflicts


def _resume_conflicts(saved: TrainConfig, values: dict[str, Any], run_dir) -> list[str]:
    """One phrase per setting of ``values`` that a resume of ``saved`` cannot change."""
    conflicts = []
    out = values.get("out")
    if out is not None and not _same_folder(out, run_dir):
        conflicts.append(f"--out {out} (the resumed folder is {run_dir})")
    conflicts += _optimizer_arg_conflicts(saved, values.get("optimizer_args", {}))
    saved_run = resolve(saved)
    for key, value in values.items():
        if key in ("out", "resume", "optimizer_args") or key in RESUME_CHANGEABLE:
            continue
        given = (resolve(dataclasses.replace(saved, **{key: value})).value(key)
                 if key in RESOLVED_FIELDS else value)
        if given != saved_run.value(key):
            conflicts.append(f"{_flag(key)} {value} (saved: {saved_run.value(key)})")
    steps = values.get("steps", saved.steps)
    if steps < saved.steps:
        conflicts.append(f"--steps {steps} (saved: {saved.steps}; a resumed run can only "
                         f"be made longer)")
    return conflicts


def resume_config(run_dir: str | os.PathLike, changes: Mapping[str, Any] | None = None
                  ) -> TrainConfig:
    """The saved settings of run ``run_dir`` with ``changes`` applied, validated.

    Only ``RESUME_CHANGEABLE`` settings are applied; ConflictError, in one line naming each
    flag, the value given and the saved value, when any other setting differs (``lr``,
    ``plain_lr`` and ``seq_len`` compare as resolved: ``--lr`` equal to the optimizer's
    harness lr is no change) or when ``steps`` is fewer than saved.
    """
    saved = read_run_config(run_dir)
    values = typed_settings(dict(changes or {}))
    conflicts = _resume_conflicts(saved, values, run_dir)
    if conflicts:
        raise ConflictError(
            f"cannot resume {run_dir} with {'; '.join(conflicts)}: on resume only --steps "
            f"(larger), --eval-every, --save-every and --quiet can change (and "
            f"--extend-schedule); start a new run with --out to change the others")
    changed = {k: v for k, v in values.items() if k in RESUME_CHANGEABLE}
    return validate(dataclasses.replace(saved, **changed, resume=str(run_dir),
                                        out=str(run_dir)))


def resume_changes(config: TrainConfig) -> dict[str, Any]:
    """The changes a config given to ``train`` with ``resume`` set asks for: every field
    given explicitly (:meth:`~snsm_workbench.train.config.TrainConfig.given_fields`), equal
    to its default or not; ``TrainConfig(resume=RUN, steps=200)`` asks for 200 steps. A
    complete config (``config_from_args``, :func:`resume_config`, ``dataclasses.replace``
    of a saved config) gives every field."""
    given = config.given_fields() - {"resume"}
    return {key: value for key, value in config.to_dict().items() if key in given}


def record_resume(record: dict[str, Any], config: TrainConfig, step: int) -> bool:
    """Write the settings a resume at ``step`` changed into the run ``record`` (its
    ``config`` table, and one ``resumes`` entry); returns whether any changed."""
    saved = record["config"]
    changed = {k: [saved.get(k), getattr(config, k)] for k in RESUME_CHANGEABLE
               if saved.get(k) != getattr(config, k)}
    if changed:
        record["config"] = {**saved, **{k: new for k, (_, new) in changed.items()}}
        record.setdefault("resumes", []).append({"step": step, "changed": changed})
    return bool(changed)


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def check_record_unedited(run_dir: str | os.PathLike, config: Mapping[str, Any],
                          trained: Mapping[str, Any]) -> None:
    """CheckpointError, naming the key, both values and the file, when a setting of the
    resumed ``config`` (read from ``RUN/config.json``) that a resume cannot change differs
    from the one the checkpoint was trained with (``trained``): the record was edited by
    hand, and would no longer describe the run."""
    for key, value in trained.items():
        if key in RESUME_CHANGEABLE or key in _PLACE or key not in config:
            continue
        if _as_json(config[key]) != _as_json(value):  # a tuple and a list are the same
            path = Path(run_dir) / CONFIG_NAME
            raise CheckpointError(
                f"cannot resume {run_dir}: {path} says {key}={config[key]!r} but the run was "
                f"trained with {key}={value!r} (its checkpoint); the record was edited: "
                f"restore {key}, or start a new run with --out to change it")
