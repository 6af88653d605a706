"""A fixed set of daemon threads that run claimed jobs.

Daemon threads, unlike ``concurrent.futures``, never hold the process open: when
a shutdown times out, a job still running is abandoned (and failed by the
deregistration) instead of blocking exit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from .connections import close_thread_connections

logger = logging.getLogger("dj_queue")


class ExecutionPool[T]:
    """``size`` threads running items. ``run`` may hand back the thread's next
    item (a job claimed together with the last one's outcome); otherwise a
    thread that finishes asks ``next_item`` for one before going idle. Under
    load each thread fetches its own next job right away, instead of queueing
    behind a single claimer."""

    def __init__(
        self,
        size: int,
        run: Callable[[T], T | None],
        on_done: Callable[[], None],
        name: str,
        next_item: Callable[[], T | None] = lambda: None,
    ) -> None:
        self.size = size
        self._run = run
        self._on_done = on_done
        self._next_item = next_item
        self._queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._busy = 0
        self._lock = threading.Condition()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{index}", daemon=True)
            for index in range(size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def idle(self) -> int:
        with self._lock:
            return self.size - self._busy

    def submit(self, item: T) -> None:
        with self._lock:
            if self._busy >= self.size:
                raise RuntimeError("ExecutionPool.submit: no idle thread")
            self._busy += 1
        self._queue.put(item)

    def wait_idle(self, timeout: float, still_busy: Callable[[], int] = lambda: 0) -> bool:
        """Wait until no job runs but the ``still_busy()`` ones, which are no
        longer waited for; False if others still run after ``timeout``."""
        with self._lock:
            return self._lock.wait_for(lambda: self._busy <= still_busy(), timeout)

    def _run_one(self, item: T) -> T | None:
        """Run ``item``; return the next one this thread should run, if any."""
        try:
            following = self._run(item)
            return following if following is not None else self._next_item()
        except Exception:
            # ``run`` records job outcomes itself; reaching here is a bug (or
            # the database failing ``next_item``), and the thread must outlive it.
            logger.exception("unexpected error in %s", threading.current_thread().name)
            return None

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _serve(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                while item is not None:
                    item = self._run_one(item)
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()
                self._on_done()
        finally:
            close_thread_connections()
