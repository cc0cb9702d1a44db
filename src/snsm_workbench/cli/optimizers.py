"""``snsm list``: the registry's optimizers."""

from __future__ import annotations

import argparse

from snsm.optim.registry import OPTIMIZERS


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("list", help="list the registry's optimizers")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    for name, spec in OPTIMIZERS.items():
        print(f"{name:14s} {spec.cls.__name__:12s} {spec.summary}")
    return 0
