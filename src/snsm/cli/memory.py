"""``snsm memory``: optimizer-state memory at the paper's LLaMA shapes, or per GPU under FSDP2."""

from __future__ import annotations

import argparse

from snsm.cli.output import DTYPES, print_rows
from snsm.measure.memory import memory_rows
from snsm.measure.models import LLAMA_SHAPES, llama_skeleton
from snsm.measure.sharded import per_gpu_rows


def add_parser(subparsers) -> argparse.ArgumentParser:
    memory = subparsers.add_parser("memory",
                                   help="optimizer-state memory for the paper's LLaMA shapes")
    memory.add_argument("--model", choices=list(LLAMA_SHAPES), default="llama-1b")
    memory.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    memory.add_argument("--rank", type=int, default=512)
    memory.add_argument("--no-bases", action="store_true", help="leave projector bases out")
    memory.add_argument("--no-peers", action="store_true",
                        help="only the registry (no GaLore, APOLLO, Adam-mini, ... rows)")
    memory.add_argument("--world-size", type=int, nargs="+", metavar="N",
                        help="per-GPU state under FSDP2 for these GPU counts (with GaLore)")
    memory.add_argument("--json", action="store_true")
    memory.set_defaults(run=run)
    return memory


def _bases(args: argparse.Namespace) -> str:
    return "not counted" if args.no_bases else "counted"


def run(args: argparse.Namespace) -> int:
    if args.world_size:
        return _run_per_gpu(args)
    rows = memory_rows(args.model, DTYPES[args.dtype], args.rank, not args.no_bases,
                       peers=not args.no_peers)
    if not args.json:
        print(f"{args.model}, states in {args.dtype}, rank {args.rank}, projector bases "
              f"{_bases(args)}")
    print_rows(rows, [("optimizer", "optimizer"), ("GiB", "gib"), ("% of AdamW", "pct_of_adamw")],
               args.json)
    return 0


def _run_per_gpu(args: argparse.Namespace) -> int:
    """``snsm memory --world-size N ...``: per-GPU state under FSDP2."""
    rows = per_gpu_rows(llama_skeleton(args.model), DTYPES[args.dtype], args.rank,
                        not args.no_bases, args.world_size)
    if not args.json:
        print(f"{args.model}, per-GPU optimizer state (GiB) under FSDP2, states in {args.dtype}, "
              f"rank {args.rank}, projector bases {_bases(args)}")
    print_rows(rows, [("optimizer", "optimizer"),
                      *[(f"{n} GPU" + "s" * (n > 1), f"gib_{n}") for n in args.world_size]],
               args.json)
    return 0
