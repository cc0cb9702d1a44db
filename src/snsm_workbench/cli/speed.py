"""``snsm speed``: optimizer step time against torch AdamW."""

from __future__ import annotations

import argparse

import torch

from snsm_workbench.cli import add_command
from snsm_workbench.cli.args import positive_int
from snsm_workbench.cli.output import print_rows
from snsm_workbench.measure.models import LLAMA_SHAPES
from snsm_workbench.measure.speed import measure_speed, merge_compiled, speed_device
from snsm.optim.registry import list_optimizers
from snsm.projectors import PROJECTORS
from snsm.checks import check_choice

COLUMNS = [("optimizer", "optimizer"), ("projector", "projector"), ("step ms", "step_ms"),
           ("refresh ms", "refresh_ms"), ("amortized ms", "amortized_ms"),
           ("AdamW ms", "adamw_ms"), ("ratio", "ratio_vs_adamw")]
FUSED_COLUMNS = [("fused AdamW ms", "fused_adamw_ms"), ("ratio vs fused", "ratio_vs_fused_adamw")]
COMPILED_COLUMNS = [("compiled ms", "compiled_ms"), ("compiled AdamW ms", "compiled_adamw_ms"),
                    ("compiled ratio", "compiled_ratio_vs_adamw"),
                    ("compile speedup", "compile_speedup")]


def add_parser(subparsers) -> argparse.ArgumentParser:
    speed = add_command(subparsers, "speed")
    speed.add_argument("--model", choices=list(LLAMA_SHAPES), default="llama-60m",
                       help="LLaMA shape whose weights are stepped (default llama-60m)")
    speed.add_argument("--optimizers", help="comma-separated registry names (default: all)")
    speed.add_argument("--repeats", type=positive_int, default=7,
                       help="timed runs per optimizer; the median is shown (default 7)")
    speed.add_argument("--update-gap", type=positive_int, default=200,
                       help="steps between subspace refreshes: the refresh time is amortized "
                            "over them (default 200)")
    speed.add_argument("--compile", action="store_true",
                       help="also time compile=True steps against a compiled AdamW")
    speed.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="cuda: the skeleton on the GPU, CUDA events, and AdamW(fused=True) "
                            "as a second baseline")
    speed.add_argument("--projectors", default=",".join(("svd", "rsvd", "uniform")),
                       help="comma-separated projectors of the Subspace-Momentum rows")
    speed.add_argument("--peers", default="",
                       help="comma-separated peers of snsm bench to time too (those whose "
                            "package is missing, or that fail on the device, are left out)")
    speed.add_argument("--against", default="",
                       help="comma-separated peers of snsm bench timed in every round beside "
                            "AdamW (e.g. muon: torch.optim.Muon); each row gets its time and "
                            "a ratio vs that peer, interleaved under the same load")
    speed.add_argument("--json", action="store_true", help="print the rows as JSON")
    speed.set_defaults(run=run)
    return speed


def run(args: argparse.Namespace) -> int:
    optimizers = [name.strip() for name in args.optimizers.split(",")] if args.optimizers \
        else None
    for name in optimizers or []:  # checked before any model is built
        check_choice("--optimizers name", name, list_optimizers())
    projectors = tuple(name.strip() for name in args.projectors.split(",") if name.strip())
    for name in projectors:
        check_choice("--projectors name", name, list(PROJECTORS))
    device = speed_device(args.device)  # one line without CUDA, before any model is built
    extra, against = _peer_builders(args.peers), _peer_builders(args.against)
    kwargs = dict(optimizers=optimizers, repeats=args.repeats, update_gap=args.update_gap,
                  projectors=projectors, device=device, extra=extra, against=against)
    rows = measure_speed(args.model, compile=False, **kwargs)
    columns = COLUMNS + (FUSED_COLUMNS if device.type == "cuda" else []) + [
        column for name in against for column in (
            (f"{name} (peer) ms", f"peer_{name}_ms"),
            (f"ratio vs {name}", f"ratio_vs_peer_{name}"))]
    if args.compile:
        compiled = {(row["optimizer"], row["projector"]): row
                    for row in measure_speed(args.model, compile=True, **kwargs)}
        rows = [merge_compiled(row, compiled[key]) if (key := (row["optimizer"],
                                                              row["projector"])) in compiled
                else row for row in rows]
        columns = columns + COMPILED_COLUMNS
    if not args.json:
        where = (f"fp32 on {torch.cuda.get_device_name(device)}, CUDA events"
                 if device.type == "cuda" else f"fp32, {torch.get_num_threads()} threads")
        print(f"{args.model}: optimizer step time against torch.optim.AdamW(foreach=True)"
              + (" and AdamW(fused=True)" if device.type == "cuda" else "")
              + "".join(f" and peer {name}" for name in against)
              + f", {where}, median of {args.repeats}, "
              f"amortized over update_gap={args.update_gap}"
              + ("; compiled: compile=True against torch.compile(AdamW.step)"
                 if args.compile else ""))
    print_rows(rows, columns, args.json)
    return 0


def _peer_builders(names: str) -> dict:
    """``name -> build(model)`` for the comma-separated peers of ``snsm bench``."""
    from snsm_workbench.bench.peers import build_peer, peer_names

    builders = {}
    for name in (n.strip() for n in names.split(",") if n.strip()):
        check_choice("--peers name", name, peer_names())
        builders[name] = lambda model, name=name: build_peer(name, model)
    return builders
