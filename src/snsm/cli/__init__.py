"""Command line: ``snsm list | memory | speed | train | demo | lab | bench``.

One module per subcommand, each with ``add_parser(subparsers)``; they parse
arguments and print, and call the layers below for everything else.
"""

from __future__ import annotations

import argparse
import logging
import sys

from snsm.cli import bench, lab, memory, optimizers, speed, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snsm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (optimizers, memory, speed, train, lab, bench):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
