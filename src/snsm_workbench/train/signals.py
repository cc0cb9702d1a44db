"""SIGINT and SIGTERM during a run: finish the step and save, or abandon it on a second one."""

from __future__ import annotations

import logging
import signal
import threading

from snsm_workbench.util.errors import Interrupted

logger = logging.getLogger(__name__)


class StopRequest:
    """SIGINT / SIGTERM handlers for the length of a run (main thread only; elsewhere none).

    The first signal is recorded in ``signum`` (the loop stops after the current step);
    a second one abandons the step at once with :class:`~snsm_workbench.util.errors.Interrupted`.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            raise Interrupted(signum, f"{name} again: the step was abandoned; the last "
                                      f"checkpoint is kept")
        self.signum = signum
        logger.warning("%s: stopping after this step, then saving (send it again to stop at "
                       "once, without saving)", name)
