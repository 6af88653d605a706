"""Async mode: every actor runs as a thread of the supervisor's process."""

from __future__ import annotations

import threading

from .actor import Actor
from .supervisor_base import Ending, Supervisor


class AsyncSupervisor(Supervisor):
    """Runs every actor as a thread of this process.

    ``standalone=False`` leaves signals to a host (an ASGI or Gunicorn server
    embedding the runtime), which calls ``stop()`` itself.
    """

    mode = "async"

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
        # A thread cannot be killed: what it still runs is abandoned (and its
        # jobs failed) as the process exits.
        return [
            Ending(slot, "did not stop within shutdown_timeout", False)
            for slot in self.slots
            if slot.running
        ]
