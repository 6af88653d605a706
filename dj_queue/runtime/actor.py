"""What every runtime process shares: a registry row, heartbeats, a stop flag
and a main loop that survives database errors."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, ClassVar

from django.db import DatabaseError, InterfaceError

from ..config import QueueConfig
from ..ids import new_process_name
from ..operations.processes import deregister_process, heartbeat, register_process
from .connections import close_thread_connections, drop_broken_connections
from .errors import report_thread_error

logger = logging.getLogger("dj_queue")

MAX_BACKOFF = 10.0


class Actor:
    """A supervised runtime process, run by ``run()`` in a thread or a child process."""

    kind: ClassVar[str]
    # A forking supervisor beats in its own loop: it must hold no other thread
    # (nor any open connection) when it forks.
    heartbeat_in_thread: ClassVar[bool] = True

    def __init__(
        self, *, backend_alias: str, config: QueueConfig, supervisor_id: int | None = None
    ) -> None:
        self.backend_alias = backend_alias
        self.config = config
        self.alias = config.database_alias
        self.name = new_process_name(self.kind)
        self.supervisor_id = supervisor_id
        self.process_id: int | None = None
        self.clean_exit = True
        # Set by an actor that stops so as to be replaced (not a failure).
        self.retired = False
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._last_beat = time.monotonic()

    # -- control ------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the actor to stop; safe to call many times and from any thread."""
        self._stopping.set()
        self._wakeup.set()

    def wake(self) -> None:
        self._wakeup.set()

    def sleep(self, seconds: float) -> None:
        """Wait up to ``seconds``, returning early on ``wake()`` or ``stop()``."""
        self._wakeup.wait(seconds)
        self._wakeup.clear()

    def _process_id(self) -> int:
        assert self.process_id is not None, "the actor is not registered yet"
        return self.process_id

    # -- lifecycle ------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {}

    def run(self) -> None:
        try:
            if not self._register():
                return
            self._start_heartbeat()
            logger.info(
                "%s started name=%s pid=%d %s",
                self.kind,
                self.name,
                os.getpid(),
                " ".join(f"{key}={value}" for key, value in self.metadata().items()),
            )
            self._loop()
        finally:
            try:
                self.shutdown()
            finally:
                self._deregister()
                close_thread_connections()
                logger.info("%s stopped name=%s clean=%s", self.kind, self.name, self.clean_exit)

    def _loop(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                self.step()
                failures = 0
            except Exception as exc:
                failures += 1
                self._on_error(exc, f"{self.kind} {self.name}")
                self.sleep(min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 5)))

    def step(self) -> None:
        """One round of work, including any wait; called until the actor stops."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Let work in progress end; runs once the loop has stopped."""

    def _on_error(self, exc: Exception, context: str) -> None:
        if isinstance(exc, DatabaseError | InterfaceError):
            logger.warning("database error in %s: %s", context, exc)
            drop_broken_connections()
        else:
            report_thread_error(exc, self.config.on_thread_error, context)

    # -- registry and heartbeats -------------------------------------------------
    def _register(self) -> bool:
        failures = 0
        while not self.stopping:
            try:
                process = register_process(
                    self.alias,
                    kind=self.kind,
                    name=self.name,
                    backend_alias=self.backend_alias,
                    metadata=self.metadata(),
                    supervisor_id=self.supervisor_id,
                )
                self.process_id = process.pk
                return True
            except Exception as exc:
                failures += 1
                self._on_error(exc, f"registering {self.kind} {self.name}")
                self.sleep(min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 5)))
        return False

    def _deregister(self) -> None:
        if self.process_id is None:
            return
        try:
            failed = deregister_process(self.alias, self.process_id)
            if failed:
                self.clean_exit = False
                logger.warning(
                    "%s %s stopped with %d job(s) unfinished; they are failed",
                    self.kind,
                    self.name,
                    failed,
                )
        except Exception as exc:
            # Left for another process to prune once the heartbeat is stale.
            self.clean_exit = False
            self._on_error(exc, f"deregistering {self.kind} {self.name}")

    def _start_heartbeat(self) -> None:
        self._last_beat = time.monotonic()
        if not self.heartbeat_in_thread:
            return
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()

    def _heartbeat_loop(self) -> None:
        try:
            while not self._stopping.wait(self.config.process_heartbeat_interval):
                self.beat()
        finally:
            close_thread_connections()

    def heartbeat_due(self) -> bool:
        return time.monotonic() - self._last_beat >= self.config.process_heartbeat_interval

    def beat(self) -> None:
        """Heartbeat once. Stops the actor when its row is gone (another process
        pruned it) or when it has not managed to heartbeat for longer than
        ``process_alive_threshold`` (others presume it dead by now)."""
        try:
            alive = heartbeat(self.alias, self._process_id())
        except Exception as exc:
            self._on_error(exc, f"heartbeat of {self.kind} {self.name}")
            silent_for = time.monotonic() - self._last_beat
            if silent_for > self.config.process_alive_threshold:
                logger.error(
                    "%s stopping name=%s reason=no-heartbeat-for-%.0fs",
                    self.kind,
                    self.name,
                    silent_for,
                )
                self.stop()
            return
        if not alive:
            logger.error(
                "%s stopping name=%s reason=pruned-by-another-process", self.kind, self.name
            )
            self.stop()
            return
        self._last_beat = time.monotonic()
