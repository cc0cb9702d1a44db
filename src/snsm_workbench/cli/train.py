"""``snsm train`` (one run of the harness) and ``snsm demo`` (the standard record's tuned optimizers)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from snsm_workbench.cli.args import positive_int
from snsm_workbench.cli.train_flags import add_lean_arguments, add_train_arguments, config_from_args
from snsm_workbench.train.config import check_paths, validate
from snsm_workbench.util.tables import text_table

EVALUATION_COLUMNS = [("step", "step"), ("tokens", "tokens"), ("train loss", "train_loss"),
                      ("val loss", "val_loss"), ("val ppl", "val_ppl")]


def add_parser(subparsers) -> None:
    train = subparsers.add_parser("train",
                                  help="pre-train a LLaMA with an optimizer of the registry")
    add_train_arguments(train)
    add_lean_arguments(train)
    train.set_defaults(run=run_train)

    demo = subparsers.add_parser(
        "demo", help="adamw, adamw_snsm (tuned, lean), muon: the standard record's lrs")
    demo.add_argument("--steps", type=positive_int, default=None,
                      help="optimizer steps of each run (default: the demo suite's)")
    demo.add_argument("--eval-every", type=positive_int, default=None,
                      help="steps between evaluations (default: the demo suite's)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the model init and batches (default 0)")
    demo.add_argument("--out", default="runs/demo",
                      help="folder of the runs, demo.png and table.md (default runs/demo)")
    demo.add_argument("--cache-dir", default=None,
                      help="token cache folder (default: $SNSM_CACHE or ~/.cache/snsm)")
    demo.add_argument("--data", default=None,
                      help="local text file or folder (default: Shakespeare)")
    demo.add_argument("--vocab-size", type=positive_int, default=None,
                      help="BPE vocabulary size (default: the standard suite's)")
    demo.add_argument("--seq-len", type=positive_int, default=None,
                      help="sequence length (default: the standard suite's)")
    demo.add_argument("--batch-size", type=positive_int, default=None,
                      help="batch size (default: the demo suite's)")
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
    from snsm_workbench.bench.demo import demo_config, demo_report
    from snsm_workbench.bench.demo import run_demo as demo

    given = {key: value for key in ("cache_dir", "data", "vocab_size", "seq_len", "batch_size")
             if (value := getattr(args, key)) is not None}
    base = validate(demo_config(args.steps, args.eval_every, args.seed, args.quiet, **given))
    check_paths(dataclasses.replace(base, out=args.out))
    rows = demo(args.out, base)
    data = args.data or "Shakespeare"
    print(f"tiny LLaMA on {data}, {base.steps} steps, batch {base.batch_size}, "
          f"seed {args.seed} (figure: {args.out}/demo.png)")
    print(demo_report(rows, base.steps))
    return 0
