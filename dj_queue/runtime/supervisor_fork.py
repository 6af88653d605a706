"""Fork mode: every actor runs in a child process of its own."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from django.db import connections

from .actor import Actor
from .selfpipe import SelfPipe, install_stop_handlers
from .supervisor_base import RETIRED_EXIT_CODE, Ending, Slot, Supervisor

logger = logging.getLogger("dj_queue")


class ForkSupervisor(Supervisor):
    """Runs every actor in a child process of its own.

    The supervisor holds no other thread and no open database connection when
    it forks, so a child inherits neither a lock nor a socket in use.
    """

    mode = "fork"
    heartbeat_in_thread = False

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        # A child's death wakes the supervisor at once.
        signal.signal(signal.SIGCHLD, lambda signum, frame: self._pipe.poke())

    def launch(self, actor: Actor) -> int:
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which never returns
            _run_child(actor, parent)
        return pid

    def _slot_of(self, pid: int) -> Slot | None:
        return next((slot for slot in self.slots if slot.handle == pid), None)

    def ended_children(self) -> list[Ending]:
        endings = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = self._slot_of(pid)
            if slot is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code < 0:
                description = f"was killed by {signal.Signals(-code).name}"
            elif code == RETIRED_EXIT_CODE:
                description = "retired to be replaced"
            else:
                description = f"exited with status {code}"
            retired = code == RETIRED_EXIT_CODE
            endings.append(Ending(slot, description, code == 0 or retired, retired=retired))
        return endings

    def _signal_children(self, signum: int) -> None:
        for slot in self.slots:
            if slot.running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.handle, signum)

    def stop_children(self) -> None:
        self._signal_children(signal.SIGTERM)

    def force_children(self) -> list[Ending]:
        endings = []
        for slot in self.slots:
            if slot.running:
                try:
                    os.kill(slot.handle, signal.SIGKILL)
                    os.waitpid(slot.handle, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
                endings.append(Ending(slot, "was killed after shutdown_timeout", False))
        return endings

    def quit_children(self) -> None:
        self._signal_children(signal.SIGQUIT)


def _run_child(actor: Actor, parent_pid: int) -> None:
    """The whole life of a forked child: run ``actor`` in a thread while the main
    thread turns signals (and the supervisor's death) into ``actor.stop()``."""
    code = 1
    try:
        pipe = SelfPipe()
        install_stop_handlers(pipe)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        thread = threading.Thread(target=actor.run, name=actor.name)
        thread.start()
        while thread.is_alive():
            pipe.wait(1.0)
            if pipe.signals and not actor.stopping:
                actor.stop()
            if os.getppid() != parent_pid and not actor.stopping:
                # Never run unsupervised: the supervisor is gone.
                logger.error("%s stopping name=%s reason=supervisor-gone", actor.kind, actor.name)
                actor.stop()
        thread.join()
        code = RETIRED_EXIT_CODE if actor.retired else 0 if actor.clean_exit else 1
    except BaseException:
        logger.exception("%s crashed name=%s", actor.kind, actor.name)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
