"""Errors every layer may raise and the command line turns into one line (no snsm imports).

* ``ConflictError``  the request conflicts with what is on disk: a run folder held by another
  process or already holding a run, a resume that would change the saved run or its data.
* ``TrainingError``  training cannot go on (for example: non-finite losses in a row).
* ``OutOfMemory``    the settings ask for more memory than there is; the message says what
  ran out and what to lower (a ValueError: a setting to change, not a diverged run).
* ``Interrupted``    a run stopped on SIGINT or SIGTERM (after saving); ``exit_code`` is
  ``128 + signal number``, the shell's convention (130, 143).
"""

from __future__ import annotations

import signal


class ConflictError(ValueError):
    """The request conflicts with the state on disk; the message says what to do instead."""


class TrainingError(RuntimeError):
    """Training cannot go on (for example: non-finite losses in a row)."""


class OutOfMemory(ValueError):
    """A step or measurement did not fit in memory; the message names what to lower. Not a
    TrainingError, which callers such as the bench record as a diverged run."""


class Interrupted(KeyboardInterrupt):
    """A run stopped on a signal; ``message`` says what was kept and how to go on;
    ``reported`` is True once it has been logged."""

    def __init__(self, signum: int, message: str, reported: bool = False):
        super().__init__(message)
        self.signum = signum
        self.message = message
        self.reported = reported

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name
