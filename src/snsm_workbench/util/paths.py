"""Checks of folders the workbench writes (ValueError or PermissionError naming the path), and
the repository checkout, for what only a checkout has."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def check_writable_folder(name: str, path: str | os.PathLike) -> Path:
    """A folder that exists and can be written, or that can be created: its nearest existing
    ancestor is a writable folder. Creates nothing."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is not a folder (a file is in the way)")
    ancestor = path.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{name} {str(path)!r} cannot be created: {str(ancestor)!r} is a "
                         f"file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{name} {str(path)!r} is not writable: no write "
                                            f"permission on {str(ancestor)!r}")
    return path


def check_not_special(name: str, path: str | os.PathLike) -> None:
    """ValueError when ``path`` is a FIFO, a socket or a device, whose reading would block or
    never end: the workbench reads regular files and folders only. A missing path passes."""
    try:
        mode = os.stat(Path(path).expanduser()).st_mode
    except OSError:
        return
    kind = next((kind for test, kind in _SPECIAL if test(mode)), None)
    if kind is not None:
        raise ValueError(f"{name} {path} is {kind}, not a regular file or folder")


def repository_root(needs: str) -> Path:
    """The repository checkout this workbench runs from (``src/snsm_workbench/util/`` -> the
    root): the folder holding ``pyproject.toml``, ``src/snsm_workbench`` and ``benchmarks/``.
    Only for what only a checkout has (the bench records, the tests); an installed wheel has
    none: FileNotFoundError naming ``needs`` (what the caller wanted from it) and the way out."""
    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    if package != root / "src" / "snsm_workbench" or not all(
            (root / name).exists() for name in ("pyproject.toml", "benchmarks")):
        raise FileNotFoundError(
            f"{needs} needs a repository checkout of snsm (pyproject.toml, src/ and "
            f"benchmarks/), but this workbench runs from {package}, outside one (an installed "
            f"wheel?): clone the repository and install it with pip install -e '.[train]'")
    return root
