"""``snsm speed``: optimizer step time against torch AdamW."""

from __future__ import annotations

import argparse

import torch

from snsm.cli.args import positive_int
from snsm.cli.output import print_rows
from snsm.measure.models import LLAMA_SHAPES
from snsm.measure.speed import measure_speed, merge_compiled
from snsm.optim.registry import list_optimizers
from snsm.util.checks import check_choice

COLUMNS = [("optimizer", "optimizer"), ("projector", "projector"), ("step ms", "step_ms"),
           ("refresh ms", "refresh_ms"), ("amortized ms", "amortized_ms"),
           ("AdamW ms", "adamw_ms"), ("ratio", "ratio_vs_adamw")]
COMPILED_COLUMNS = [("compiled ms", "compiled_ms"), ("compiled AdamW ms", "compiled_adamw_ms"),
                    ("compiled ratio", "compiled_ratio_vs_adamw"),
                    ("compile speedup", "compile_speedup")]


def add_parser(subparsers) -> argparse.ArgumentParser:
    speed = subparsers.add_parser("speed", help="optimizer step time against torch AdamW")
    speed.add_argument("--model", choices=list(LLAMA_SHAPES), default="llama-60m")
    speed.add_argument("--optimizers", help="comma-separated registry names (default: all)")
    speed.add_argument("--repeats", type=positive_int, default=7)
    speed.add_argument("--update-gap", type=positive_int, default=200)
    speed.add_argument("--compile", action="store_true",
                       help="also time compile=True steps against a compiled AdamW")
    speed.add_argument("--json", action="store_true")
    speed.set_defaults(run=run)
    return speed


def run(args: argparse.Namespace) -> int:
    optimizers = [name.strip() for name in args.optimizers.split(",")] if args.optimizers \
        else None
    for name in optimizers or []:  # checked before any model is built
        check_choice("--optimizers name", name, list_optimizers())
    rows = measure_speed(args.model, optimizers=optimizers, repeats=args.repeats,
                         update_gap=args.update_gap, compile=False)
    columns = COLUMNS
    if args.compile:
        compiled = measure_speed(args.model, optimizers=optimizers, repeats=args.repeats,
                                 update_gap=args.update_gap, compile=True)
        rows = [merge_compiled(row, other) for row, other in zip(rows, compiled)]
        columns = COLUMNS + COMPILED_COLUMNS
    if not args.json:
        print(f"{args.model}: optimizer step time against torch.optim.AdamW(foreach=True), "
              f"fp32, {torch.get_num_threads()} threads, median of {args.repeats}, "
              f"amortized over update_gap={args.update_gap}"
              + ("; compiled: compile=True against torch.compile(AdamW.step)"
                 if args.compile else ""))
    print_rows(rows, columns, args.json)
    return 0
