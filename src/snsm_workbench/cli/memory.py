"""``snsm memory``: optimizer-state memory at the paper's LLaMA shapes, or per GPU under FSDP2.

Four tables: the state table (the default), per-GPU state (``--world-size``), total
training memory (``--total``) and one measured step (``--measure``). A flag the chosen
table does not read is refused in one line rather than ignored (``READS``).
"""

from __future__ import annotations

import argparse

from snsm_workbench.cli import add_command
from snsm_workbench.cli.args import positive_int
from snsm_workbench.cli.output import DTYPES, print_rows
from snsm_workbench.measure.memory import memory_rows
from snsm_workbench.measure.models import PRESETS, llama_skeleton
from snsm_workbench.measure.sharded import per_gpu_rows
from snsm_workbench.measure.total import PARTS, total_rows
from snsm.optim.auxiliary import AUX_RULES
from snsm.rules.bf16 import BF16_UPDATES

COMMON = ("--model", "--rank", "--json")
STEP = ("--micro-batch", "--seq-len", "--checkpointing")
TABLES = {  # the flag that asks for a table -> its name (no flag: the state table)
    "--measure": "the measured step (--measure)",
    "--total": "the totals table (--total)",
    "--world-size": "the per-GPU state table (--world-size)",
}
READS = {  # table -> the flags it reads, beside COMMON
    "the state table": ("--dtype", "--no-bases", "--no-peers", "--state-precision",
                        "--bf16-update", "--aux"),
    TABLES["--world-size"]: ("--world-size", "--dtype", "--no-bases"),
    TABLES["--total"]: ("--total", *STEP, "--world-size", "--no-bases"),
    TABLES["--measure"]: ("--measure", *STEP),
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    memory = add_command(subparsers, "memory")
    memory.add_argument("--model", choices=list(PRESETS), default="llama-1b",
                        help="LLaMA shape: the paper's sizes, or a small preset of the harness")
    memory.add_argument("--dtype", choices=list(DTYPES), default="bf16",
                        help="bytes per full-precision state element")
    memory.add_argument("--rank", type=positive_int, default=512,
                        help="rank of the subspace (Subspace-Momentum, GaLore, APOLLO)")
    memory.add_argument("--no-bases", action="store_true", help="leave projector bases out")
    memory.add_argument("--no-peers", action="store_true",
                        help="only the registry (no GaLore, APOLLO, Adam-mini, ... rows)")
    memory.add_argument("--world-size", type=positive_int, nargs="+", metavar="N",
                        help="per-GPU state under FSDP2 for these GPU counts (with GaLore); "
                             "with --total, one table per count")
    memory.add_argument("--state-precision", choices=("full", "8bit"), default="full",
                        help="8bit: blockwise 8-bit momenta for the optimizers that take it "
                             "(%% still of AdamW's full-precision state)")
    memory.add_argument("--bf16-update", choices=BF16_UPDATES,
                        default="stochastic",
                        help="kahan: count the bf16 compensation (2 bytes per weight) of our "
                             "optimizers' bf16_update='kahan' (with --dtype bf16)")
    memory.add_argument("--aux", choices=AUX_RULES, default=None,
                        help="the auxiliary rule (embedding, head, norms) of the Muon family's "
                             "rows (default: each one's, adamw)")
    memory.add_argument("--total", action="store_true",
                        help="total training memory per GPU: weights, gradients, state and "
                             "activations, for AdamW (AMP, bf16), GaLore 8-bit and ours")
    memory.add_argument("--measure", action="store_true",
                        help="one real training step per setup, its measured peak beside "
                             "--total's estimate (use a small --model: tiny, small, llama-60m)")
    memory.add_argument("--micro-batch", type=positive_int, default=1, help="sequences per micro-batch")
    memory.add_argument("--seq-len", type=positive_int, default=None,
                        help="tokens per sequence (default: the model's, 256)")
    memory.add_argument("--checkpointing", action="store_true",
                        help="activation checkpointing (one block's activations at a time)")
    memory.add_argument("--json", action="store_true", help="print the rows as JSON")
    memory.set_defaults(run=run)
    return memory


def _bases(args: argparse.Namespace) -> str:
    return "not counted" if args.no_bases else "counted"


def _table(args: argparse.Namespace) -> str:
    """Which table the flags ask for (a key of ``READS``)."""
    if args.measure and args.total:
        raise ValueError("--measure and --total print two different tables (--measure already "
                         "compares the measured peak with --total's estimate): give one of them")
    for flag, table in TABLES.items():
        if getattr(args, flag[2:].replace("-", "_")):
            return table
    return "the state table"


def check_flags(args: argparse.Namespace) -> None:
    """ValueError naming the first flag given (not at its default) that the table ignores."""
    table = _table(args)
    defaults = vars(add_parser(argparse.ArgumentParser().add_subparsers()).parse_args([]))
    for dest, default in defaults.items():
        flag = "--" + dest.replace("_", "-")
        if getattr(args, dest) == default or flag in COMMON or flag in READS[table]:
            continue
        readers = " or ".join(name for name, reads in READS.items() if flag in reads)
        raise ValueError(f"{flag} has no effect on {table}; it is read by {readers}")
    if args.bf16_update == "kahan" and args.dtype != "bf16":
        raise ValueError(f"--bf16-update kahan has no effect with --dtype {args.dtype}: the "
                         f"Kahan compensation is kept for bf16 weights only (--dtype bf16)")


def run(args: argparse.Namespace) -> int:
    check_flags(args)
    if args.measure:
        return _run_measure(args)
    if args.total:
        return _run_total(args)
    if args.world_size:
        return _run_per_gpu(args)
    rows = memory_rows(args.model, DTYPES[args.dtype], args.rank, not args.no_bases,
                       peers=not args.no_peers, state_precision=args.state_precision,
                       bf16_update=args.bf16_update, aux=args.aux)
    if not args.json:
        precision = "" if args.state_precision == "full" else ", 8-bit states where supported"
        if args.bf16_update == "kahan":  # with --dtype bf16 (check_flags)
            precision += ", Kahan compensation"
        if args.aux:
            precision += f", the Muon family's auxiliary rule {args.aux}"
        print(f"{args.model}, states in {args.dtype}{precision}, rank {args.rank}, projector "
              f"bases {_bases(args)}")
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


def _tokens(args: argparse.Namespace) -> str:
    seq_len = args.seq_len or PRESETS[args.model].seq_len
    return (f"micro-batch {args.micro_batch} x {seq_len} tokens, activation checkpointing "
            f"{'on' if args.checkpointing else 'off'}")


def _run_total(args: argparse.Namespace) -> int:
    """``snsm memory --total``: per-GPU totals, one table per world size."""
    for world_size in args.world_size or [1]:
        rows = total_rows(args.model, args.rank, args.micro_batch, args.seq_len,
                          args.checkpointing, world_size, not args.no_bases)
        if not args.json:
            print(f"{args.model}, total training memory per GPU (GiB), {world_size} GPU"
                  f"{'s' * (world_size > 1)}, rank {args.rank}, {_tokens(args)}, projector "
                  f"bases {_bases(args)}; activations are an estimate")
        print_rows(rows, [("setup", "setup"), *[(part, f"{part}_gib") for part in PARTS]],
                   args.json)
    return 0


def _run_measure(args: argparse.Namespace) -> int:
    """``snsm memory --measure``: one real step per setup, measured peak beside the estimate."""
    from snsm_workbench.train.step_memory import measure_rows

    rows = measure_rows(args.model, args.micro_batch, args.seq_len, args.checkpointing,
                        args.rank)
    for row in rows:
        row["estimate_mib"] = round(row["estimate"] / 2**20, 1)
        row["measured_mib"] = round(row["measured"] / 2**20, 1)
        row["measured_over_estimate"] = round(row["measured"] / row["estimate"], 3)
    if not args.json:
        print(f"{args.model}, one training step per setup (random init, bf16 autocast), "
              f"rank {args.rank}, {_tokens(args)}; peak of live tensor bytes (CPU) or "
              f"max_memory_allocated (CUDA)")
    print_rows(rows, [("setup", "setup"), ("estimate MiB", "estimate_mib"),
                      ("measured peak MiB", "measured_mib"),
                      ("measured / estimate", "measured_over_estimate")], args.json)
    return 0
