"""``snsm train`` (one run of the harness) and ``snsm demo`` (AdamW, AdamSN, AdamSNSM)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from snsm_workbench.cli.args import positive_int
from snsm.rules.bf16 import BF16_UPDATES
from snsm_workbench.train.config import (STATE_PRECISION_FLAGS, TrainConfig, add_train_arguments,
                               check_paths, config_from_args, validate)
from snsm_workbench.util.tables import text_table

EVALUATION_COLUMNS = [("step", "step"), ("tokens", "tokens"), ("train loss", "train_loss"),
                      ("val loss", "val_loss"), ("val ppl", "val_ppl")]


def add_parser(subparsers) -> None:
    train = subparsers.add_parser("train",
                                  help="pre-train a LLaMA with an optimizer of the registry")
    add_train_arguments(train)
    add_lean_arguments(train)
    train.set_defaults(run=run_train)

    demo = subparsers.add_parser("demo", help="adamw vs adamw_sn vs adamw_snsm on the tiny LLaMA")
    demo.add_argument("--steps", type=positive_int, default=300)
    demo.add_argument("--eval-every", type=positive_int, default=25)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--cache-dir", default=None)
    demo.add_argument("--data", default=None,
                      help="local text file or folder (default: Shakespeare)")
    demo.add_argument("--vocab-size", type=positive_int, default=None,
                      help="BPE vocabulary size (default 8192)")
    demo.add_argument("--seq-len", type=positive_int, default=None,
                      help="sequence length (default: the preset's)")
    demo.add_argument("--batch-size", type=positive_int, default=None,
                      help="batch size (default 16)")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(run=run_demo)


def add_lean_arguments(parser: argparse.ArgumentParser) -> None:
    """``--state-precision``, ``--pure-bf16`` and ``--bf16-update``: shortcuts for the
    settings they stand for (``train.config.apply_lean_flags``)."""
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


def _is_main_rank() -> bool:
    """Whether this process prints (rank 0 under torchrun, or alone)."""
    return os.environ.get("RANK", "0") == "0"


def run_train(args: argparse.Namespace) -> int:
    from snsm_workbench.train.loop import train
    from snsm_workbench.train.metrics import METRICS_NAME, evaluation_rows, read_records

    run_dir = train(config_from_args(args))
    if _is_main_rank():
        print(text_table(evaluation_rows(read_records(run_dir / METRICS_NAME)),
                         EVALUATION_COLUMNS))
        print(f"run folder: {run_dir}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from snsm_workbench.bench.demo import run_demo as demo
    from snsm_workbench.bench.report import format_table

    given = {key: value for key in ("cache_dir", "data", "vocab_size", "seq_len", "batch_size")
             if (value := getattr(args, key)) is not None}
    base = validate(TrainConfig(preset="tiny", steps=args.steps, eval_every=args.eval_every,
                                save_every=100, seed=args.seed, quiet=args.quiet, **given))
    check_paths(dataclasses.replace(base, out=args.out))
    rows = demo(args.out, base)
    data = args.data or "Shakespeare"
    print(f"tiny LLaMA on {data}, {args.steps} steps, batch {base.batch_size}, "
          f"seed {args.seed} (curves: {args.out}/demo.png)")
    print(format_table(rows))
    return 0
