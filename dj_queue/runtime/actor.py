"""What every runtime process shares: a registry row, heartbeats, a stop flag
and a main loop that survives database errors."""

from __future__ import annotations

import logging
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
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

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
            logger.info("%s %s started %s", self.kind, self.name, self.metadata())
            self._loop()
        finally:
            try:
                self.shutdown()
            finally:
                self._deregister()
                close_thread_connections()
                logger.info("%s %s stopped", self.kind, self.name)

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
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()

    def _heartbeat_loop(self) -> None:
        interval = self.config.process_heartbeat_interval
        last_beat = time.monotonic()
        try:
            while not self._stopping.wait(interval):
                try:
                    alive = heartbeat(self.alias, self._process_id())
                except Exception as exc:
                    self._on_error(exc, f"heartbeat of {self.kind} {self.name}")
                    if time.monotonic() - last_beat > self.config.process_alive_threshold:
                        logger.error(
                            "%s %s could not heartbeat for %.0fs and is presumed "
                            "dead elsewhere; stopping",
                            self.kind,
                            self.name,
                            time.monotonic() - last_beat,
                        )
                        self.stop()
                    continue
                if not alive:
                    logger.error(
                        "%s %s was pruned as dead by another process; stopping",
                        self.kind,
                        self.name,
                    )
                    self.stop()
                    return
                last_beat = time.monotonic()
        finally:
            close_thread_connections()
