"""Async mode: every actor runs as a thread of the supervisor's process.

Standalone (``manage.py dj_queue --mode async``), the supervisor's loop is the
process's main thread and it handles the stop signals. Embedded
(``standalone=False``: inside an ASGI or Gunicorn server), the host owns the
signals: ``start()`` runs the loop on a thread of its own and returns once every
actor has registered, and the host calls ``stop()``.
"""

from __future__ import annotations

import threading
import time

from ..exceptions import DjQueueError
from .actor import Actor
from .supervisor_base import SHUTDOWN_GRACE, Ending, Supervisor

# How long an embedded start waits for its actors to register.
START_TIMEOUT = 30.0


class EmbeddedStartError(DjQueueError):
    """An embedded supervisor could not get its actors registered."""


class AsyncSupervisor(Supervisor):
    """Runs every actor as a thread of this process."""

    mode = "async"
    _loop_thread: threading.Thread | None = None

    # -- embedded: started and stopped by a host --------------------------------------
    def start(self) -> int:
        """Standalone: run until stopped and return the exit status. Embedded:
        start the loop on a thread, return 0 once every planned actor has
        registered (EmbeddedStartError if that does not happen)."""
        if self.standalone:
            return super().start()
        if self._loop_thread is not None:
            return 0
        self._loop_thread = threading.Thread(target=self.run, name=f"{self.name}-loop", daemon=True)
        self._loop_thread.start()
        self._wait_until_registered()
        return 0

    def _wait_until_registered(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._loop_thread is not None
            if not self._loop_thread.is_alive():
                raise EmbeddedStartError(
                    "the dj_queue supervisor stopped while starting (see the dj_queue log)"
                )
            if self.registered():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedStartError(
            f"the dj_queue actors did not register within {START_TIMEOUT:g}s "
            "(is the queue database reachable?)"
        )

    def registered(self) -> bool:
        """Whether the supervisor and every planned actor have their process row."""
        if self.process_id is None or not self._booted:
            return False
        return all(
            slot.actor is not None and slot.actor.process_id is not None for slot in self.slots
        )

    def stop(self) -> None:
        """Ask the supervisor to stop. Called by a host (not from the loop's own
        thread), it also waits for the graceful stop: running jobs get
        ``shutdown_timeout``, then what is left is recovered as after a forced
        stop. Safe to call many times."""
        super().stop()
        thread = self._loop_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.config.shutdown_timeout + SHUTDOWN_GRACE + 5)

    # -- children as threads ------------------------------------------------------------
    def launch(self, actor: Actor) -> threading.Thread:
        thread = threading.Thread(target=actor.run, name=actor.name, daemon=True)
        thread.start()
        return thread

    def ended_children(self) -> list[Ending]:
        endings = []
        for slot in self.slots:
            if slot.running and not slot.handle.is_alive():
                assert slot.actor is not None
                clean = slot.actor.clean_exit and slot.actor.stopping
                endings.append(Ending(slot, "stopped" if clean else "crashed", clean))
        return endings

    def stop_children(self) -> None:
        for slot in self.slots:
            if slot.actor is not None:
                slot.actor.stop()

    def force_children(self) -> list[Ending]:
        # A thread cannot be killed: what it still runs is abandoned and its
        # jobs failed; should it finish later, its outcome is not recorded (the
        # claim is gone). Standalone, the process exits right after.
        return [
            Ending(slot, "did not stop within shutdown_timeout", False)
            for slot in self.slots
            if slot.running
        ]
