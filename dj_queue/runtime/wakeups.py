"""Waking idle workers at once when work arrives (PostgreSQL LISTEN/NOTIFY).

An enqueue, a promotion or a retry on PostgreSQL notifies the channel with the
queue's name. A worker's listener thread holds a connection of its own that
LISTENs there and wakes the worker when one of its queues is named. It is only
a hint: a notification lost while disconnected costs one polling interval,
because polling stays the path that guarantees every job is found.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from django.db import connections

from ..db.base import NOTIFY_CHANNEL

logger = logging.getLogger("dj_queue")

MAX_RECONNECT_DELAY = 30.0


def selectors_match(selectors: Sequence[str], queue_name: str) -> bool:
    for selector in selectors:
        if selector == "*" or selector == queue_name:
            return True
        if selector.endswith("*") and queue_name.startswith(selector[:-1]):
            return True
    return False


class ReadyListener:
    """A daemon thread that calls ``wake`` when a matching queue gets ready work."""

    def __init__(
        self,
        alias: str,
        selectors: Sequence[str],
        wake: Callable[[], None],
        stopped: threading.Event,
        name: str,
    ) -> None:
        self.alias = alias
        self.selectors = tuple(selectors)
        self.wake = wake
        self.stopped = stopped
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        delay = 0.5
        while not self.stopped.is_set():
            # A connection of its own, outside Django's per-thread pool: it
            # does nothing but wait for notifications.
            wrapper = connections.create_connection(self.alias)
            try:
                wrapper.ensure_connection()
                connection = wrapper.connection
                connection.autocommit = True
                connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self.connected.set()
                delay = 0.5
                # Whatever was enqueued while we were not listening.
                self.wake()
                while not self.stopped.is_set():
                    for notification in connection.notifies(timeout=1.0):
                        if selectors_match(self.selectors, notification.payload):
                            self.wake()
            except Exception as exc:
                self.connected.clear()
                if self.stopped.is_set():
                    break
                logger.warning(
                    "listener reconnecting in %.1fs alias=%s error=%s", delay, self.alias, exc
                )
                self.stopped.wait(delay)
                delay = min(MAX_RECONNECT_DELAY, delay * 2)
            finally:
                wrapper.close()
