"""The flags of ``snsm train``: one per :class:`~snsm_workbench.train.config.TrainConfig` field,
generated from the dataclass, plus ``--config FILE``, ``--opt KEY=VALUE`` and the
lean-training shortcuts (``--state-precision``, ``--pure-bf16``, ``--bf16-update``).

:func:`config_from_args` applies the layers in order: the defaults, the ``--config`` file,
the flags given (``--opt`` pairs merged into the file's ``optimizer_args``); with
``--resume RUN`` the run's saved settings are the base instead
(:func:`snsm_workbench.train.resume.resume_config`).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from snsm.optim.registry import list_optimizers
from snsm.rules.bf16 import BF16_UPDATES
from snsm_workbench.measure.models import PRESETS
from snsm_workbench.train.config import (CLIP_RULES, DEVICE_CHOICES, LEAN_OPTION_FLAGS,
                                         PARALLEL_CHOICES, WEIGHT_DTYPES, TrainConfig,
                                         config_from_dict, field_types, load_config_file,
                                         typed_settings)
from snsm_workbench.train.resume import resume_config
from snsm_workbench.train.schedule import EXTEND_MODES

# --state-precision's values and the optimizers' state_precision each stands for
STATE_PRECISION_FLAGS = {"fp32": "full", "32bit": "full", "full": "full", "8bit": "8bit"}

_HELP = {
    "preset": "model preset", "optimizer": "optimizer of the registry",
    "lr": "peak learning rate (default: the optimizer's harness_lr in the registry)",
    "plain_lr": "lr of the plain group: embeddings, norms (default: lr)",
    "steps": "optimizer steps (with --resume: a larger total extends the run, and the "
             "schedule as --extend-schedule says)",
    "extend_schedule": "when --resume adds steps: continue (the cosine goes on from the current "
                       "lr to the floor at the new last step, no jump) or rebuild (the schedule "
                       "of a run planned for the new total: the lr jumps back up)",
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
    "resume": "run folder to resume; only --steps (larger), --extend-schedule, --eval-every, "
              "--save-every and --quiet may differ from its saved settings",
    "quiet": "no progress bar (there is none when stderr is not a terminal)",
    "max_bad_steps": "stop after this many non-finite losses in a row",
    "parallel": "data parallelism under torchrun: ddp or fsdp (FSDP2); batch_size is per rank",
    "device": "where to train: auto (cuda when a GPU is visible, else cpu), cpu or cuda (an "
              "error without a GPU); under torchrun each rank takes cuda:LOCAL_RANK",
}


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
                   "weights": list(WEIGHT_DTYPES), "extend_schedule": list(EXTEND_MODES)}
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML or JSON file of settings (flags override it)")
    parser.add_argument("--opt", metavar="KEY=VALUE", action="append", type=_opt_type,
                        default=None, help="optimizer argument (repeatable), e.g. rank=32")
    for name, (base, _) in field_types().items():
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
        values.update(typed_settings(load_config_file(given["config"]), f"{given['config']}: "))
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


def add_lean_arguments(parser: argparse.ArgumentParser) -> None:
    """``--state-precision``, ``--pure-bf16`` and ``--bf16-update``: shortcuts for the
    settings they stand for (:func:`apply_lean_flags`)."""
    lean = parser.add_argument_group("lean training (each also works with --step-in-backward)")
    lean.add_argument("--state-precision", choices=list(STATE_PRECISION_FLAGS), default=None,
                      help="optimizer states: 8bit (blockwise 8-bit momenta) or full precision "
                           "(fp32, 32bit, full); sets --opt state_precision")
    lean.add_argument("--pure-bf16", action="store_true", default=None,
                      help="bf16 weights with no fp32 master copy (--weights bf16), updated with "
                           "stochastic rounding unless --bf16-update says otherwise")
    lean.add_argument("--bf16-update", choices=list(BF16_UPDATES), default=None,
                      help="how updates reach bf16 weights: stochastic (rounding, the default), "
                           "kahan (a bf16 compensation per weight, 2 bytes each) or nearest "
                           "(stalls; for comparison); sets --opt bf16_update")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < ``--config`` file < flags given (``--opt`` merged into optimizer_args);
    with ``--resume RUN``: the run's saved settings < the settings given (:func:`resume_config`)."""
    values = _given(args)
    if values.get("resume") is not None:
        return resume_config(values["resume"], values)
    return config_from_dict(values)

