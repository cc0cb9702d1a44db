"""``snsm train`` (one run of the harness) and ``snsm demo`` (AdamW, AdamSN, AdamSNSM)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from snsm_workbench.cli.args import positive_int
from snsm_workbench.cli.train_flags import add_lean_arguments, add_train_arguments, config_from_args
from snsm_workbench.train.config import TrainConfig, check_paths, validate
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
    demo.add_argument("--steps", type=positive_int, default=300,
                      help="optimizer steps of each run (default 300)")
    demo.add_argument("--eval-every", type=positive_int, default=25,
                      help="steps between evaluations (default 25)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the model init and batches (default 0)")
    demo.add_argument("--out", default="runs/demo",
                      help="folder of the three runs and demo.png (default runs/demo)")
    demo.add_argument("--cache-dir", default=None,
                      help="token cache folder (default: $SNSM_CACHE or ~/.cache/snsm)")
    demo.add_argument("--data", default=None,
                      help="local text file or folder (default: Shakespeare)")
    demo.add_argument("--vocab-size", type=positive_int, default=None,
                      help="BPE vocabulary size (default 8192)")
    demo.add_argument("--seq-len", type=positive_int, default=None,
                      help="sequence length (default: the preset's)")
    demo.add_argument("--batch-size", type=positive_int, default=None,
                      help="batch size (default 16)")
    demo.add_argument("--quiet", action="store_true",
                      help="no progress bar (there is none when stderr is not a terminal)")
    demo.set_defaults(run=run_demo)


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
    from snsm_workbench.bench.table_report import format_table

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
