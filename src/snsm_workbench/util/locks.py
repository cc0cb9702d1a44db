"""An exclusive lock on a folder: one process at a time (``fcntl.flock`` on ``folder/.lock``).

The kernel drops the lock when its holder exits, however it ends (SIGKILL included),
so a stale lock file never blocks anyone. Within one process the lock is re-entrant
(counted), so a program may open a folder twice in turn; other processes are refused at
once with :class:`~snsm_workbench.util.errors.ConflictError`. Without ``fcntl`` (Windows) the lock is
a no-op. The lock file stays in the folder: removing it would let a waiting process lock
an orphaned inode.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from snsm_workbench.util.errors import ConflictError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_held: dict[Path, list[int]] = {}  # lock file -> [file descriptor, holders in this process]
_guard = threading.Lock()


def _holder(fd: int) -> str:
    """The pid the holder wrote into the lock file, as text ('unknown' if none yet)."""
    try:
        return os.pread(fd, 32, 0).decode().strip() or "unknown"
    except (OSError, UnicodeDecodeError):
        return "unknown"


class FolderLock:
    """``acquire()`` / ``release()`` of the lock of ``folder`` (which must exist)."""

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.path = Path(folder).resolve() / LOCK_NAME
        self.what = what
        self.held = False

    def acquire(self) -> FolderLock:
        """Take the lock; ConflictError naming the holder's pid if another process has it."""
        if self.held or fcntl is None:
            self.held = True
            return self
        with _guard:
            entry = _held.get(self.path)
            if entry is None:
                entry = [self._lock_file(), 0]
                _held[self.path] = entry
            entry[1] += 1
        self.held = True
        return self

    def _lock_file(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise ConflictError(f"{self.what} {self.path.parent} is in use by another process "
                                f"(pid {pid}); wait for it to end or choose another "
                                f"folder") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        logger.debug("locked %s", self.path)
        return fd

    def release(self) -> None:
        """Give the lock back (the file is closed when this process's last holder releases)."""
        if not self.held:
            return
        self.held = False
        if fcntl is None:
            return
        with _guard:
            entry = _held.get(self.path)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del _held[self.path]
                os.close(entry[0])  # closing the descriptor drops the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
