"""``snsm train`` (one run of the harness) and ``snsm demo`` (AdamW, AdamSN, AdamSNSM)."""

from __future__ import annotations

import argparse

from snsm.train.config import TrainConfig, add_train_arguments, config_from_args


def add_parser(subparsers) -> None:
    train = subparsers.add_parser("train",
                                  help="pre-train a LLaMA with an optimizer of the registry")
    add_train_arguments(train)
    train.set_defaults(run=run_train)

    demo = subparsers.add_parser("demo", help="adamw vs adamw_sn vs adamw_snsm on the tiny LLaMA")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--eval-every", type=int, default=25)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--cache-dir", default=None)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(run=run_demo)


def run_train(args: argparse.Namespace) -> int:
    from snsm.train.loop import train

    run_dir = train(config_from_args(args))
    print(f"run folder: {run_dir}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from snsm.bench.demo import run_demo as demo
    from snsm.bench.report import format_table

    base = TrainConfig(preset="tiny", steps=args.steps, eval_every=args.eval_every,
                       save_every=100, seed=args.seed, quiet=args.quiet,
                       **({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    rows = demo(args.out, base)
    print(f"tiny LLaMA on Shakespeare, {args.steps} steps, batch {base.batch_size}, "
          f"seed {args.seed} (curves: {args.out}/demo.png)")
    print(format_table(rows))
    return 0
