"""Training settings: the ``TrainConfig`` schema and its validation.

Settings come in layers, each checked the same way: the defaults, a TOML/JSON file
(:func:`load_config_file`), then command-line flags (:mod:`snsm_workbench.cli.train_flags`).
:func:`config_from_dict` applies a mapping of settings to the defaults and :func:`validate`
checks every field: each check raises ValueError naming the field, the value and what is
expected. ``None`` marks a derived value (lr, plain_lr, seq_len), resolved once per run by
:func:`snsm_workbench.train.run_config.resolve`; resuming a run is
:mod:`snsm_workbench.train.resume`.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from snsm_workbench.measure.models import PRESETS
from snsm.optim.hyperparameters import check_hyperparameters
from snsm.optim.registry import get_spec, list_optimizers
from snsm_workbench.train.corpora import TEXT_SUFFIXES
from snsm_workbench.train.parallel import DEVICES
from snsm_workbench.train.schedule import EXTEND_MODES
from snsm.checks import check_choice, check_int, check_nonnegative
from snsm_workbench.util.paths import check_not_special, check_writable_folder

PARALLEL_CHOICES = ("none", "ddp", "fsdp")
DEVICE_CHOICES = DEVICES  # auto: cuda when torch sees a GPU, else cpu
CLIP_RULES = ("global", "per-parameter")
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MIN_VOCAB_SIZE = 257  # a byte-level BPE vocabulary holds the 256 bytes and the end-of-text token
# Constructor arguments the harness sets itself: never part of optimizer_args.
_HARNESS_ARGS = ("params", "lr", "weight_decay")
# optimizer_args set by a lean-training flag: a resume conflict names the flag too
LEAN_OPTION_FLAGS = {"state_precision": "--state-precision", "bf16_update": "--bf16-update"}


def _default_cache_dir() -> str:
    return os.environ.get("SNSM_CACHE") or "~/.cache/snsm"


@dataclass
class TrainConfig:
    """One training run's settings. ``None`` means: derived (lr: :func:`harness_lr`, seq_len:
    the preset's, plain_lr: lr; resolved by :func:`~snsm_workbench.train.run_config.resolve`)
    or absent (data source, output folder, resume folder)."""

    preset: str = "tiny"
    optimizer: str = "adamw_snsm"
    lr: float | None = None
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    plain_lr: float | None = None
    steps: int = 200
    batch_size: int = 16
    grad_accum: int = 1
    seq_len: int | None = None
    warmup_ratio: float = 0.1
    min_lr_ratio: float = 0.1
    extend_schedule: str = "continue"  # a resume with more steps: continue or rebuild (schedule)
    grad_clip: float = 1.0
    clip_rule: str = "global"
    weight_decay: float = 0.0
    bf16: bool = False
    weights: str = "fp32"
    eval_every: int = 50
    eval_batches: int = 8
    save_every: int = 100
    seed: int = 0
    data: str | None = None
    hf_dataset: str | None = None
    hf_config: str | None = None
    vocab_size: int = 8192
    cache_dir: str = field(default_factory=_default_cache_dir)
    out: str | None = None
    resume: str | None = None
    quiet: bool = False
    max_bad_steps: int = 5
    parallel: str = "none"
    step_in_backward: bool = False
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict (``config_from_dict`` reads it back)."""
        return dataclasses.asdict(self)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        given = self.__dict__.get("_given")
        if given is not None:  # after __init__: an assignment is an explicit request
            given.add(name)

    def given_fields(self) -> frozenset[str]:
        """The fields set explicitly: passed to the constructor (every field, through
        ``dataclasses.replace``) or assigned since. A resume (:mod:`~snsm_workbench.train.
        resume`) honours or refuses each of them, whether or not it equals its default."""
        return frozenset(self.__dict__.get("_given", (f.name for f in dataclasses.fields(self))))


def _track_given(init):
    """``TrainConfig.__init__`` that also records which fields were passed."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.__dict__["_given"] = set(names[:len(args)]) | set(kwargs)

    return __init__


TrainConfig.__init__ = _track_given(TrainConfig.__init__)


def harness_lr(name: str) -> float:
    """The peak lr of optimizer ``name`` in the harness: its registry spec's ``harness_lr``
    (not the constructor's default, ``OptimizerSpec.constructor_lr``)."""
    return get_spec(name).harness_lr


@functools.cache
def field_types() -> dict[str, tuple[type, bool]]:
    """Field name -> (base type, whether None is allowed)."""
    result = {}
    for name, hint in typing.get_type_hints(TrainConfig).items():
        optional = False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = typing.get_args(hint)
            optional = type(None) in args
            hint = next(a for a in args if a is not type(None))
        result[name] = (typing.get_origin(hint) or hint, optional)
    return result


def _coerce(name: str, value: Any, where: str = "") -> Any:
    """``value`` checked against field ``name``'s type; ints become floats for float fields."""
    base, optional = field_types()[name]
    if value is None and optional:
        return None
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is dict and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return dict(value)
    if base is not dict and isinstance(value, base) and not (
            base is int and isinstance(value, bool)):
        return value
    expected = {float: "a number", int: "an integer", bool: "true or false", str: "a string",
                dict: "a table of str keys"}[base] + (" or None" if optional else "")
    raise ValueError(f"{where}{name} must be {expected}, got {value!r} "
                     f"({type(value).__name__})")


def typed_settings(values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Keys checked against the fields and values against their types."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}a config must be a mapping of settings, got {values!r}")
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ValueError(f"{where}unknown config key(s) {', '.join(map(repr, unknown))}; "
                         f"valid keys: {', '.join(names)}")
    return {key: _coerce(key, value, where) for key, value in values.items()}


def _is_json_value(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_json_value(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _check_optimizer_args(optimizer: str, args: dict[str, Any]) -> None:
    accepted = [name for name in get_spec(optimizer).options if name not in _HARNESS_ARGS]
    for key, value in args.items():
        if key in ("lr", "weight_decay"):
            raise ValueError(f"optimizer_args[{key!r}] is not allowed: set the {key} field "
                             f"(--{key.replace('_', '-')}) instead")
        if key not in accepted:
            raise ValueError(f"optimizer_args[{key!r}]: optimizer {optimizer!r} takes no such "
                             f"argument; valid keys: {', '.join(accepted)}")
        if not _is_json_value(value):
            raise ValueError(f"optimizer_args[{key!r}] must be a number, string, bool or list, "
                             f"got {value!r}")
        try:
            check_hyperparameters({key: value})
        except ValueError as exc:
            raise ValueError(f"optimizer_args[{key!r}]: {exc}") from None


def validate(config: TrainConfig) -> TrainConfig:
    """Check every field of ``config``; returns it, or raises ValueError naming the field."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"expected a TrainConfig, got {type(config).__name__}")
    for f in dataclasses.fields(config):
        _coerce(f.name, getattr(config, f.name))
    c = config
    check_choice("preset", c.preset, PRESETS)
    check_choice("optimizer", c.optimizer, list_optimizers())
    check_choice("parallel", c.parallel, PARALLEL_CHOICES)
    check_choice("device", c.device, DEVICE_CHOICES)
    check_choice("clip_rule", c.clip_rule, CLIP_RULES)
    check_choice("weights", c.weights, WEIGHT_DTYPES)
    check_choice("extend_schedule", c.extend_schedule, EXTEND_MODES)
    for name in ("steps", "batch_size", "grad_accum", "eval_every", "eval_batches",
                 "save_every", "max_bad_steps"):
        check_int(name, getattr(c, name))
    if c.seq_len is not None:
        check_int("seq_len", c.seq_len)
    check_int("vocab_size", c.vocab_size, minimum=MIN_VOCAB_SIZE)
    if not 0 <= c.seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {c.seed!r}")
    if c.lr is not None and not (0.0 < c.lr < math.inf):
        raise ValueError(f"lr must be a finite number > 0 or None, got {c.lr!r}")
    if c.plain_lr is not None:
        check_nonnegative("plain_lr", c.plain_lr)
    for name in ("warmup_ratio", "min_lr_ratio"):
        if not 0.0 <= getattr(c, name) <= 1.0:  # False for NaN too
            raise ValueError(f"{name} must be a number in [0, 1], got {getattr(c, name)!r}")
    check_nonnegative("grad_clip", c.grad_clip)
    if c.step_in_backward and c.grad_clip > 0 and c.clip_rule == "global":
        raise ValueError(f"grad_clip={c.grad_clip} clips by the global norm, which needs every "
                         f"gradient before the first update: with step_in_backward set "
                         f"clip_rule='per-parameter' or grad_clip=0")
    if c.step_in_backward and c.parallel == "fsdp":
        raise ValueError("step_in_backward cannot run with parallel='fsdp': the updates would "
                         "come before FSDP2's reduce-scatter")
    if c.step_in_backward and c.parallel == "ddp" and c.grad_accum != 1:
        raise ValueError(f"step_in_backward with parallel='ddp' needs grad_accum=1, got "
                         f"{c.grad_accum}")
    check_nonnegative("weight_decay", c.weight_decay)
    for name in ("data", "hf_dataset", "hf_config", "cache_dir", "out", "resume"):
        value = getattr(c, name)
        if value is not None and not value.strip():
            raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
    if c.data is not None and c.hf_dataset is not None:
        raise ValueError(f"data and hf_dataset are exclusive: data={c.data!r}, "
                         f"hf_dataset={c.hf_dataset!r}; set one of them")
    if c.hf_config is not None and c.hf_dataset is None:
        raise ValueError(f"hf_config={c.hf_config!r} needs hf_dataset")
    _check_optimizer_args(c.optimizer, c.optimizer_args)
    return config


def config_from_dict(d: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (default: the defaults) with the settings of ``d``, validated.

    ValueError for an unknown key (listing the valid ones), a value of the wrong
    type (ints are accepted for float fields, bools are not ints) or a bad value.
    """
    values = typed_settings(d)
    base = base or TrainConfig()
    values.setdefault("optimizer_args", dict(base.optimizer_args))
    return validate(dataclasses.replace(base, **values))


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The settings of a ``.toml`` or ``.json`` config file (not yet checked)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(f"config file {path}: unsupported extension {suffix!r}; "
                         f"expected .toml or .json")
    check_not_special("config file", path)
    try:
        raw = path.read_bytes()
        if suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python < 3.11
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # TOMLDecodeError, JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"malformed config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table of settings, "
                         f"got {type(data).__name__}")
    return data


def check_paths(config: TrainConfig, data: bool = True) -> None:
    """The paths of ``config`` usable, checked before anything is read, built or created:
    ``data`` exists (a .txt/.jsonl file or a folder) and ``cache_dir`` can be written or
    created (both skipped with ``data=False``: tokens given another way), ``out`` can be
    written or created, ``resume`` is a folder."""
    if data:
        _check_data_paths(config)
    if config.resume is not None:
        if not Path(config.resume).is_dir():
            raise FileNotFoundError(errno.ENOENT, f"cannot resume {config.resume}: no such "
                                                  f"folder")
    else:
        check_writable_folder("out", config.out or "runs")


def _check_data_paths(config: TrainConfig) -> None:
    from snsm_workbench.train.corpora import names_a_corpus

    if config.data is not None and not names_a_corpus(config.data):
        data = Path(config.data).expanduser()
        if not data.exists():
            raise FileNotFoundError(errno.ENOENT, f"data path {config.data} does not exist")
        check_not_special("data path", data)
        if data.is_file() and data.suffix.lower() not in TEXT_SUFFIXES:
            raise ValueError(f"data path {config.data}: expected a .txt or .jsonl file or a "
                             f"folder, got a {data.suffix or 'suffix-less'} file")
    check_writable_folder("cache_dir", config.cache_dir)
