"""The pipe a runtime loop sleeps on, and the signal handlers that write to it.

Signal handlers only note the signal and write to a pipe: setting an Event
there could deadlock on the lock the interrupted code holds. The loop, woken
by the pipe, acts on the signal outside the handler.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Callable
from types import FrameType


class SelfPipe:
    """A non-blocking pipe: ``poke()`` (from a signal handler or another thread)
    ends a ``wait()`` early."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        # Noted by ``note``; the loop takes them once woken.
        self.signals: list[int] = []

    def poke(self) -> None:
        """Write a wake-up byte; safe in a signal handler."""
        with contextlib.suppress(OSError):  # a full pipe already holds a wake-up
            os.write(self._w, b"\0")

    def note(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler: note the signal and wake the loop."""
        self.signals.append(signum)
        self.poke()

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds``, returning early once poked."""
        select.select([self._r], [], [], seconds)
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass


def install_stop_handlers(pipe: SelfPipe, on_quit: Callable[[], None] | None = None) -> None:
    """SIGTERM and SIGINT are noted on ``pipe`` for the loop to stop gracefully;
    SIGQUIT calls ``on_quit`` and ends the process at once."""

    def immediate(signum: int, frame: FrameType | None) -> None:
        if on_quit is not None:
            on_quit()
        os._exit(1)

    signal.signal(signal.SIGTERM, pipe.note)
    signal.signal(signal.SIGINT, pipe.note)
    signal.signal(signal.SIGQUIT, immediate)
