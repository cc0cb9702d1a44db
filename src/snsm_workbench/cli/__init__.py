"""Command line: snsm list | memory | speed | train | demo | export | lab | bench | docs.

One module per subcommand, each with ``add_parser(subparsers)``; they parse
arguments and print, and call the layers below for everything else. ``COMMANDS``
names each subcommand's module and help line, so that ``snsm --help`` imports
none of them and ``snsm CMD`` imports only CMD's module.

Errors a user can act on (a bad setting or path, a refused resume, a folder in use,
a full disk, no permission) print one line, ``snsm: error: <message>``, on stderr and
exit with 2; a run whose losses stay non-finite exits with 1; a run stopped by SIGINT
or SIGTERM exits with 130 or 143 after saving. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import signal
import sys
import threading

from typing import Iterable, NamedTuple

from snsm_workbench.util.errors import ConflictError, Interrupted, TrainingError

USAGE_ERROR = 2
DIVERGED = 1  # TrainingError: the losses stayed non-finite
# OSErrors that come from the user's machine or paths, not from a bug.
PLAIN_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}
EXPECTED = (ValueError, FileNotFoundError, PermissionError, ConflictError, ImportError)
# Third-party modules of the workbench -> the extra that installs them (pyproject.toml).
EXTRAS = {module: "train" for module in ("transformers", "tokenizers", "accelerate", "numpy",
                                         "tqdm", "matplotlib")}


class Command(NamedTuple):
    """Where a subcommand's parser lives (``snsm_workbench.cli.<module>``) and its help line."""

    module: str
    help: str


COMMANDS = {  # in the order of `snsm --help`; tests/test_cli.py checks the help lines
    "list": Command("listing", "list the registry's optimizers and their lrs"),
    "memory": Command("memory", "optimizer-state memory for the paper's LLaMA shapes"),
    "speed": Command("speed", "optimizer step time against torch AdamW"),
    "train": Command("train", "pre-train a LLaMA with an optimizer of the registry"),
    "demo": Command("train", "adamw, adamw_snsm (tuned, lean), muon: the standard record's lrs"),
    "export": Command("export", "a snsm train run as a Hugging Face model folder "
                                "(save_pretrained)"),
    "lab": Command("lab", "theory lab: convergence claims on synthetic problems, with fitted "
                          "rates"),
    "bench": Command("bench", "benchmark our optimizers against the peers (results.json, "
                              "report.md)"),
    "docs": Command("docs", "rewrite the README/docs tables generated from records; --check "
                            "lists stale ones"),
}


def add_command(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """Register subcommand ``name`` with its help line from ``COMMANDS``."""
    return subparsers.add_parser(name, help=COMMANDS[name].help, **kwargs)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``snsm train: error: ... (see snsm train --help)``."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(commands: Iterable[str] = tuple(COMMANDS)) -> argparse.ArgumentParser:
    """The ``snsm`` parser: the full subparsers of ``commands`` (their modules imported),
    and for the other subcommands an entry with their name and help line alone."""
    parser = Parser(prog="snsm", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {COMMANDS[name].module for name in commands if name in COMMANDS}
    for name, command in COMMANDS.items():
        if command.module not in modules:
            sub.add_parser(name, help=command.help)
        elif name not in sub.choices:  # a module may register two (train and demo)
            importlib.import_module(f"{__name__}.{command.module}").add_parser(sub)
    for subparser in sub.choices.values():  # `snsm train ... --debug` works too
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand in ``argv``: its first argument that is not an option (``snsm``'s own
    options take no value), or None."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error the user can act on (printed as one line)."""
    if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError)):
        return exc.errno in PLAIN_ERRNOS
    return isinstance(exc, EXPECTED)


def missing_extra(exc: BaseException) -> str | None:
    """For a workbench dependency that is not installed, the line that names its extra."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    extra = EXTRAS.get(exc.name.split(".")[0])
    if extra is None:
        return None
    return (f"this command needs {exc.name.split('.')[0]}, from the '{extra}' extra: "
            f"pip install 'snsm[{extra}]'")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (an OSError's reason and file, no [Errno N]; a
    missing workbench dependency names its extra)."""
    if missing_extra(exc):
        return missing_extra(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _terminate(signum, frame) -> None:
    """SIGTERM outside a training run: stop like Ctrl-C does (no save to make here)."""
    raise Interrupted(signum, "SIGTERM: stopped")


@contextlib.contextmanager
def _sigterm_stops():
    """SIGTERM raises Interrupted while the command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(exc: BaseException) -> int | None:
    """Print the one line ``exc`` deserves and return the exit code; None: not an error a
    user can act on (the caller re-raises it, with its traceback)."""
    if isinstance(exc, Interrupted):
        if not exc.reported:  # a run logs what it saved and how to resume
            print(f"snsm: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        print("snsm: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    if isinstance(exc, TrainingError) or (isinstance(exc, Exception) and is_user_error(exc)):
        print(f"snsm: error: {one_line(exc)}", file=sys.stderr)
        return DIVERGED if isinstance(exc, TrainingError) else USAGE_ERROR
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser([chosen_command(argv)])
    except ModuleNotFoundError as exc:
        if missing_extra(exc) is None or "--debug" in argv:
            raise
        print(f"snsm: error: {missing_extra(exc)}", file=sys.stderr)
        return USAGE_ERROR
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with _sigterm_stops():
        try:
            return args.run(args)
        except BaseException as exc:
            code = None if args.debug else exit_code(exc)
            if code is None:
                raise
            return code


if __name__ == "__main__":
    sys.exit(main())
