"""Command line: ``snsm list | memory | speed | train | demo``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch

from snsm.optim.registry import OPTIMIZERS, list_optimizers
from snsm.measure.models import LLAMA_SHAPES

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
GIB = 2**30


def _print_rows(rows: list[dict], columns: list[tuple[str, str]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    header = [title for _, title in columns]
    body = [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *body]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def memory_rows(model: str, dtype: torch.dtype, rank: int, include_bases: bool,
                peers: bool = False) -> list[dict]:
    """Optimizer-state GiB per optimizer for a LLaMA shape, against AdamW.

    ``peers`` adds the peers' rows (:mod:`snsm.measure.peers`, from their documented layouts).
    """
    from snsm.measure.memory import estimate_state_bytes
    from snsm.measure.models import llama_skeleton

    skeleton = llama_skeleton(model)
    rows = []
    for name in list_optimizers():
        hparams = {"rank": rank} if "rank" in _signature(name) else {}
        total = estimate_state_bytes(skeleton, name, dtype=dtype, include_bases=include_bases,
                                     **hparams)
        rows.append({"optimizer": name, "bytes": total, "gib": round(total / GIB, 2)})
    if peers:
        from snsm.measure.peers import PEER_FORMULAS, peer_state_bytes
        from snsm.measure.models import LLAMA_SHAPES

        for name in PEER_FORMULAS:
            total = peer_state_bytes(skeleton, name, dtype=dtype, rank=rank,
                                     heads=LLAMA_SHAPES[model].heads, include_bases=include_bases)
            rows.append({"optimizer": name, "bytes": total, "gib": round(total / GIB, 2)})
    adamw = next(row["bytes"] for row in rows if row["optimizer"] == "adamw")
    for row in rows:
        row["pct_of_adamw"] = round(100 * row["bytes"] / adamw, 1)
    return rows


def _signature(name: str) -> set[str]:
    import inspect
    return set(inspect.signature(OPTIMIZERS[name]).parameters)


def _cmd_list(args: argparse.Namespace) -> int:
    for name, cls in OPTIMIZERS.items():
        print(f"{name:14s} {cls.__name__:12s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    return 0


def _cmd_memory(args: argparse.Namespace) -> int:
    if args.world_size:
        return _cmd_memory_per_gpu(args)
    rows = memory_rows(args.model, DTYPES[args.dtype], args.rank, not args.no_bases,
                       peers=not args.no_peers)
    if not args.json:
        bases = "not counted" if args.no_bases else "counted"
        print(f"{args.model}, states in {args.dtype}, rank {args.rank}, projector bases {bases}")
    _print_rows(rows, [("optimizer", "optimizer"), ("gib", "GiB"), ("pct_of_adamw", "% of AdamW")],
                args.json)
    return 0


def _cmd_memory_per_gpu(args: argparse.Namespace) -> int:
    """``snsm memory --world-size N ...``: per-GPU state under FSDP2 (:mod:`snsm.measure.sharded`)."""
    from snsm.measure.sharded import scale_rows
    from snsm.measure.models import llama_skeleton

    rows = scale_rows(llama_skeleton(args.model), DTYPES[args.dtype], args.rank,
                      not args.no_bases, args.world_size)
    if not args.json:
        bases = "not counted" if args.no_bases else "counted"
        print(f"{args.model}, per-GPU optimizer state (GiB) under FSDP2, states in {args.dtype}, "
              f"rank {args.rank}, projector bases {bases}")
    _print_rows(rows, [("optimizer", "optimizer"),
                       *[(f"gib_{n}", f"{n} GPU" + "s" * (n > 1)) for n in args.world_size]],
                args.json)
    return 0


def _cmd_speed(args: argparse.Namespace) -> int:
    from snsm.measure.speed import measure_speed

    optimizers = args.optimizers.split(",") if args.optimizers else None
    rows = measure_speed(args.model, optimizers=optimizers, repeats=args.repeats,
                         update_gap=args.update_gap, compile=False)
    columns = [("optimizer", "optimizer"), ("projector", "projector"), ("step_ms", "step ms"),
               ("refresh_ms", "refresh ms"), ("amortized_ms", "amortized ms"),
               ("adamw_ms", "AdamW ms"), ("ratio_vs_adamw", "ratio")]
    if args.compile:
        compiled = measure_speed(args.model, optimizers=optimizers, repeats=args.repeats,
                                 update_gap=args.update_gap, compile=True)
        rows = [merge_compiled(row, other) for row, other in zip(rows, compiled)]
        columns += [("compiled_ms", "compiled ms"), ("compiled_adamw_ms", "compiled AdamW ms"),
                    ("compiled_ratio_vs_adamw", "compiled ratio"),
                    ("compile_speedup", "compile speedup")]
    if not args.json:
        print(f"{args.model}: optimizer step time against torch.optim.AdamW(foreach=True), "
              f"fp32, {torch.get_num_threads()} threads, median of {args.repeats}, "
              f"amortized over update_gap={args.update_gap}"
              + ("; compiled: compile=True against torch.compile(AdamW.step)"
                 if args.compile else ""))
    _print_rows(rows, columns, args.json)
    return 0


def merge_compiled(row: dict, compiled: dict) -> dict:
    """An eager row of ``measure_speed`` with the compiled run's amortized time and ratio."""
    if (row["optimizer"], row["projector"]) != (compiled["optimizer"], compiled["projector"]):
        raise RuntimeError(f"eager and compiled rows differ: {row} against {compiled}")
    return {**row, "compiled_ms": compiled["amortized_ms"],
            "compiled_adamw_ms": compiled["adamw_ms"],
            "compiled_ratio_vs_adamw": compiled["ratio_vs_adamw"],
            "compile_speedup": round(row["amortized_ms"] / compiled["amortized_ms"], 3)}


def _cmd_train(args: argparse.Namespace) -> int:
    from snsm.train.config import config_from_args
    from snsm.train.loop import train

    run_dir = train(config_from_args(args))
    print(f"run folder: {run_dir}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from snsm.train.config import TrainConfig
    from snsm.bench.demo import format_table, run_demo

    base = TrainConfig(preset="tiny", steps=args.steps, eval_every=args.eval_every,
                       save_every=100, seed=args.seed, quiet=args.quiet,
                       **({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    rows = run_demo(args.out, base)
    print(f"tiny LLaMA on Shakespeare, {args.steps} steps, batch {base.batch_size}, "
          f"seed {args.seed} (curves: {args.out}/demo.png)")
    print(format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snsm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registry's optimizers").set_defaults(run=_cmd_list)

    memory = sub.add_parser("memory", help="optimizer-state memory for the paper's LLaMA shapes")
    memory.add_argument("--model", choices=list(LLAMA_SHAPES), default="llama-1b")
    memory.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    memory.add_argument("--rank", type=int, default=512)
    memory.add_argument("--no-bases", action="store_true", help="leave projector bases out")
    memory.add_argument("--no-peers", action="store_true",
                        help="only the registry (no GaLore, APOLLO, Adam-mini, ... rows)")
    memory.add_argument("--world-size", type=int, nargs="+", metavar="N",
                        help="per-GPU state under FSDP2 for these GPU counts (with GaLore)")
    memory.add_argument("--json", action="store_true")
    memory.set_defaults(run=_cmd_memory)

    speed = sub.add_parser("speed", help="optimizer step time against torch AdamW")
    speed.add_argument("--model", choices=list(LLAMA_SHAPES), default="llama-60m")
    speed.add_argument("--optimizers", help="comma-separated registry names (default: all)")
    speed.add_argument("--repeats", type=int, default=7)
    speed.add_argument("--update-gap", type=int, default=200)
    speed.add_argument("--compile", action="store_true",
                       help="also time compile=True steps against a compiled AdamW")
    speed.add_argument("--json", action="store_true")
    speed.set_defaults(run=_cmd_speed)

    from snsm.train.config import add_train_arguments

    train = sub.add_parser("train", help="pre-train a LLaMA with an optimizer of the registry")
    add_train_arguments(train)
    train.set_defaults(run=_cmd_train)

    demo = sub.add_parser("demo", help="adamw vs adamw_sn vs adamw_snsm on the tiny LLaMA")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--eval-every", type=int, default=25)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--cache-dir", default=None)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(run=_cmd_demo)

    from snsm.cli.lab import add_parser as add_lab_parser
    add_lab_parser(sub)
    from snsm.cli.bench import add_parser as add_bench_parser
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
