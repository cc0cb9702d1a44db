"""Training configuration: ``TrainConfig`` defaults <- TOML/JSON file <- command-line flags.

``config_from_args`` applies the layers in that order (a flag overrides the file,
the file overrides the defaults; ``--opt KEY=VALUE`` pairs are merged into the
file's ``optimizer_args``) and validates the result. Every check raises
ValueError naming the field, the value and what is expected.

Resuming (``--resume RUN``): the run's saved settings (``RUN/config.json``) are the base.
Only ``RESUME_CHANGEABLE`` settings may differ: ``steps`` (larger only; the warmup+cosine
schedule is then rebuilt for the new total, from the resumed step on: the lr of step s
becomes the one a run planned for the new total has at step s), ``eval_every``,
``save_every`` and ``quiet``. Any other setting given with a different value is refused
with :class:`~snsm_workbench.util.errors.ConflictError` naming the flag, the value given and the
saved one (:func:`resume_config`).
"""

from __future__ import annotations

import argparse
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
from snsm.optim.optimizer import check_hyperparameters
from snsm.optim.registry import get_spec, list_optimizers
from snsm.rules.bf16 import BF16_UPDATES
from snsm_workbench.train.checkpoint import CheckpointError
from snsm_workbench.train.corpora import TEXT_SUFFIXES
from snsm_workbench.train.parallel import DEVICES
from snsm.checks import check_choice, check_int, check_nonnegative
from snsm_workbench.util.paths import check_writable_folder
from snsm_workbench.util.errors import ConflictError

PARALLEL_CHOICES = ("none", "ddp", "fsdp")
DEVICE_CHOICES = DEVICES  # auto: cuda when torch sees a GPU, else cpu
CLIP_RULES = ("global", "per-parameter")
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# --state-precision's values and the optimizers' state_precision each stands for
STATE_PRECISION_FLAGS = {"fp32": "full", "32bit": "full", "full": "full", "8bit": "8bit"}
MIN_VOCAB_SIZE = 257  # a byte-level BPE vocabulary holds the 256 bytes and the end-of-text token
CONFIG_NAME = "config.json"  # the run record in a run folder: {"config": {...}, ...}
# Settings a resumed run may change (steps: only to a larger value).
RESUME_CHANGEABLE = ("steps", "eval_every", "save_every", "quiet")
# Constructor arguments the harness sets itself: never part of optimizer_args.
_HARNESS_ARGS = ("params", "lr", "weight_decay")


def _default_cache_dir() -> str:
    return os.environ.get("SNSM_CACHE") or "~/.cache/snsm"


@dataclass
class TrainConfig:
    """One training run. ``None`` means: derived (lr from the optimizer, seq_len from the preset,
    plain_lr equal to lr) or absent (data source, output folder, resume folder)."""

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

    @property
    def resolved_lr(self) -> float:
        """The peak learning rate: ``lr``, or the optimizer's default (:func:`default_lr`)."""
        return self.lr if self.lr is not None else default_lr(self.optimizer)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict (``config_from_dict`` reads it back)."""
        return dataclasses.asdict(self)


_HELP = {
    "preset": "model preset", "optimizer": "optimizer of the registry",
    "lr": "peak learning rate (default: the optimizer's harness_lr in the registry)",
    "plain_lr": "lr of the plain group: embeddings, norms (default: lr)",
    "steps": "optimizer steps (with --resume: a larger total extends the run, and the warmup+"
             "cosine schedule is rebuilt for the new total from the resumed step on)",
    "batch_size": "sequences per micro-batch",
    "grad_accum": "micro-batches per step", "seq_len": "sequence length (default: the preset's)",
    "warmup_ratio": "linear warmup, as a fraction of the steps",
    "min_lr_ratio": "final lr of the cosine decay, as a fraction of the peak",
    "grad_clip": "max gradient norm (0: no clipping)", "weight_decay": "weight decay",
    "clip_rule": "global: the norm of all gradients; per-parameter: each gradient's own norm",
    "step_in_backward": "update each parameter inside the backward pass and free its gradient "
                        "(snsm.step_in_backward); needs --clip-rule per-parameter or "
                        "--grad-clip 0",
    "bf16": "bfloat16 autocast", "eval_every": "steps between evaluations",
    "weights": "dtype of the parameters: fp32, or bf16 (pure bf16: no fp32 master copy; the "
               "optimizers' bf16_update says how updates reach them, stochastic by default)",
    "eval_batches": "validation batches", "save_every": "steps between checkpoints",
    "seed": "seed of the model init and batches", "data": "local text file or folder, or a named "
                                                    "corpus: shakespeare, kjv, python-stdlib",
    "hf_dataset": "Hugging Face dataset (streamed)", "hf_config": "config of --hf-dataset",
    "vocab_size": "BPE vocabulary size", "cache_dir": "token cache folder ($SNSM_CACHE)",
    "out": "run folder (locked while a run uses it)",
    "resume": "run folder to resume; only --steps (larger), --eval-every, --save-every and "
              "--quiet may differ from its saved settings",
    "quiet": "no progress bar (there is none when stderr is not a terminal)",
    "max_bad_steps": "stop after this many non-finite losses in a row",
    "parallel": "data parallelism under torchrun: ddp or fsdp (FSDP2); batch_size is per rank",
    "device": "where to train: auto (cuda when a GPU is visible, else cpu), cpu or cuda (an "
              "error without a GPU); under torchrun each rank takes cuda:LOCAL_RANK",
}


def default_lr(name: str) -> float:
    """The peak lr of optimizer ``name`` in the harness: its registry spec's ``harness_lr``."""
    return get_spec(name).harness_lr


@functools.cache
def _field_types() -> dict[str, tuple[type, bool]]:
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
    base, optional = _field_types()[name]
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


def _typed(values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
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
    values = _typed(d)
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


def parse_opt_value(text: str) -> Any:
    """``--opt`` value: int, float, bool (true/false), a comma list of numbers, else the string."""
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if "," in text:
        items = [parse_opt_value(item) for item in text.split(",")]
        if all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in items):
            return items
    return text


def parse_opt(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, parsed VALUE)``; ValueError without a key and ``=``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--opt expects KEY=VALUE, got {text!r}")
    return key.strip(), parse_opt_value(value.strip())


def _opt_type(text: str) -> tuple[str, Any]:
    try:
        return parse_opt(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--config FILE``, ``--opt KEY=VALUE`` and one flag per field (default None)."""
    defaults = TrainConfig()
    all_choices = {"preset": list(PRESETS), "optimizer": list_optimizers(),
                   "parallel": list(PARALLEL_CHOICES), "clip_rule": list(CLIP_RULES),
                   "device": list(DEVICE_CHOICES),
                   "weights": list(WEIGHT_DTYPES)}
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML or JSON file of settings (flags override it)")
    parser.add_argument("--opt", metavar="KEY=VALUE", action="append", type=_opt_type,
                        default=None, help="optimizer argument (repeatable), e.g. rank=32")
    for name, (base, _) in _field_types().items():
        if base is dict:
            continue
        flag = "--" + name.replace("_", "-")
        shown = getattr(defaults, name)
        helptext = _HELP[name] + ("" if shown is None else f" (default: {shown})")
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=helptext)
            continue
        choices = all_choices.get(name)
        metavar = None if choices else {int: "N", float: "X"}.get(base, name.upper())
        parser.add_argument(flag, type=base, default=None, choices=choices, metavar=metavar,
                            help=helptext)
    return parser


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``args`` gives: its ``--config`` file's, then the flags set (not None),
    ``--opt`` pairs merged into ``optimizer_args``."""
    given = vars(args)
    values: dict[str, Any] = {}
    if given.get("config") is not None:
        values.update(_typed(load_config_file(given["config"]), f"{given['config']}: "))
    for f in dataclasses.fields(TrainConfig):
        if f.name != "optimizer_args" and given.get(f.name) is not None:
            values[f.name] = given[f.name]
    if given.get("opt"):
        optimizer_args = dict(values.get("optimizer_args", {}))
        for item in given["opt"]:
            key, value = parse_opt(item) if isinstance(item, str) else item
            optimizer_args[key] = value
        values["optimizer_args"] = optimizer_args
    return apply_lean_flags(values, given.get("state_precision"), given.get("bf16_update"),
                            bool(given.get("pure_bf16")))


def _set_optimizer_arg(values: dict[str, Any], key: str, value: str, flag: str) -> None:
    """``values["optimizer_args"][key] = value``; ValueError if ``--opt`` or the config file
    already set it to another value."""
    args = values.setdefault("optimizer_args", {})
    if args.get(key, value) != value:
        raise ValueError(f"{flag} conflicts with optimizer_args {key}={args[key]!r} (from "
                         f"--opt or --config); give one of them")
    args[key] = value


# optimizer_args set by a lean-training flag: a resume conflict names the flag too
LEAN_OPTION_FLAGS = {"state_precision": "--state-precision", "bf16_update": "--bf16-update"}


def apply_lean_flags(values: dict[str, Any], state_precision: str | None = None,
                     bf16_update: str | None = None, pure_bf16: bool = False) -> dict[str, Any]:
    """``values`` (settings) with the lean-training flags folded into the settings they
    stand for, so a run records one form of them (``weights`` and ``optimizer_args``, which
    a resumed run cannot change):

    * ``--state-precision P``: ``optimizer_args["state_precision"]`` (fp32 / 32bit: "full");
    * ``--bf16-update R``: ``optimizer_args["bf16_update"]`` (it acts on bf16 weights only);
    * ``--pure-bf16``: ``weights="bf16"`` and ``bf16_update="stochastic"`` unless another
      rule is given.

    ValueError naming the flag, the value and what was expected.
    """
    values = {**values, "optimizer_args": dict(values.get("optimizer_args", {}))}
    for key, given, allowed in (
            ("state_precision", state_precision, STATE_PRECISION_FLAGS),
            ("bf16_update", bf16_update, {rule: rule for rule in BF16_UPDATES})):
        if given is None:
            continue
        flag = LEAN_OPTION_FLAGS[key]
        if given not in allowed:
            raise ValueError(f"{flag} must be one of {', '.join(allowed)}, got {given!r}")
        _set_optimizer_arg(values, key, allowed[given], f"{flag} {given}")
    if pure_bf16:
        if values.get("weights", "bf16") != "bf16":
            raise ValueError(f"--pure-bf16 means bf16 weights, got --weights "
                             f"{values['weights']}; drop one of them")
        values["weights"] = "bf16"
        values["optimizer_args"].setdefault("bf16_update", "stochastic")
    elif bf16_update is not None and values.get("resume") is None \
            and values.get("weights", "fp32") != "bf16":
        raise ValueError(f"--bf16-update {bf16_update} acts on bf16 weights only, and the "
                         f"weights are {values.get('weights', 'fp32')}: add --pure-bf16 (or "
                         f"--weights bf16)")
    if not values["optimizer_args"]:
        del values["optimizer_args"]
    return values


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < ``--config`` file < flags given (``--opt`` merged into optimizer_args);
    with ``--resume RUN``: the run's saved settings < the settings given (:func:`resume_config`)."""
    values = _given(args)
    if values.get("resume") is not None:
        return resume_config(values["resume"], values)
    return config_from_dict(values)


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


def read_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The saved settings of run folder ``run_dir`` (errors name its ``config.json``)."""
    path = Path(run_dir) / CONFIG_NAME
    try:
        return config_from_dict(read_run_record(run_dir)["config"])
    except CheckpointError:
        raise
    except ValueError as exc:
        raise CheckpointError(f"cannot resume {run_dir}: {path} is corrupt ({exc})") from None


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _effective(config: TrainConfig, key: str) -> Any:
    """The value ``key`` takes in a run: derived values (None) resolved."""
    if key == "lr":
        return config.resolved_lr
    if key == "plain_lr":
        return config.resolved_lr if config.plain_lr is None else config.plain_lr
    if key == "seq_len":
        return config.seq_len or PRESETS[config.preset].seq_len
    return getattr(config, key)


def _same_folder(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _resume_conflicts(saved: TrainConfig, values: dict[str, Any], run_dir) -> list[str]:
    """One phrase per setting of ``values`` that a resume of ``saved`` cannot change."""
    conflicts = []
    out = values.get("out")
    if out is not None and not _same_folder(out, run_dir):
        conflicts.append(f"--out {out} (the resumed folder is {run_dir})")
    for key, value in values.get("optimizer_args", {}).items():
        if key not in saved.optimizer_args or saved.optimizer_args[key] != value:
            was = (f"{key}={saved.optimizer_args[key]}" if key in saved.optimizer_args
                   else f"no {key}")
            flag = LEAN_OPTION_FLAGS.get(key)
            given = f"--opt {key}={value}" if flag is None else f"{flag} {value} (--opt {key})"
            conflicts.append(f"{given} (saved: {was})")
    for key, value in values.items():
        if key in ("out", "resume", "optimizer_args") or key in RESUME_CHANGEABLE:
            continue
        replaced = dataclasses.replace(saved, **{key: value})
        if _effective(replaced, key) != _effective(saved, key):
            conflicts.append(f"{_flag(key)} {value} (saved: {_effective(saved, key)})")
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
    default lr is no change) or when ``steps`` is fewer than saved.
    """
    saved = read_run_config(run_dir)
    values = _typed(dict(changes or {}))
    conflicts = _resume_conflicts(saved, values, run_dir)
    if conflicts:
        raise ConflictError(
            f"cannot resume {run_dir} with {'; '.join(conflicts)}: on resume only --steps "
            f"(larger), --eval-every, --save-every and --quiet can change; start a new run "
            f"with --out to change the others")
    changed = {k: v for k, v in values.items() if k in RESUME_CHANGEABLE}
    return validate(dataclasses.replace(saved, **changed, resume=str(run_dir),
                                        out=str(run_dir)))


def resume_changes(config: TrainConfig) -> dict[str, Any]:
    """The changes a config given to ``train`` with ``resume`` set asks for.

    With ``out`` set the config is complete (``config_from_args``, :func:`resume_config`,
    or a saved config edited): every setting counts. With ``out`` unset
    (``TrainConfig(resume=RUN, steps=400)``) only the settings away from their defaults
    count; the others keep their saved values.
    """
    values = config.to_dict()
    del values["resume"]
    if config.out is not None:
        return values
    defaults = TrainConfig().to_dict()
    return {key: value for key, value in values.items() if value != defaults[key]}


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
        if data.is_file() and data.suffix.lower() not in TEXT_SUFFIXES:
            raise ValueError(f"data path {config.data}: expected a .txt or .jsonl file or a "
                             f"folder, got a {data.suffix or 'suffix-less'} file")
    check_writable_folder("cache_dir", config.cache_dir)
