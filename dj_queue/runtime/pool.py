"""A fixed set of daemon threads that run claimed jobs.

Daemon threads, unlike ``concurrent.futures``, never hold the process open: when
a shutdown times out, a job still running is abandoned (and failed by the
deregistration) instead of blocking exit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from .connections import close_thread_connections

logger = logging.getLogger("dj_queue")

# Weight of the latest run in the pool's running mean of run times.
RUN_TIME_WEIGHT = 0.2


class ExecutionPool[T]:
    """``size`` threads running items, and a local buffer of up to ``buffer``
    items accepted beyond them, each started by the first thread free.

    ``run`` may hand back the thread's next item (a job claimed together with
    the last one's outcome); otherwise a thread that finishes asks
    ``next_item`` for one before taking the buffer's next."""

    def __init__(
        self,
        size: int,
        run: Callable[[T], T | None],
        on_done: Callable[[], None],
        name: str,
        next_item: Callable[[], T | None] = lambda: None,
        buffer: int = 0,
    ) -> None:
        self.size = size
        self.buffer = buffer
        self._run = run
        self._on_done = on_done
        self._next_item = next_item
        self._queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._accepted = 0  # running or waiting in the buffer
        self._running = 0
        self._starting = True
        self._unstarted: list[T] = []
        self._mean_run_seconds: float | None = None
        self._lock = threading.Condition()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{index}", daemon=True)
            for index in range(size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def accepted(self) -> int:
        """Items running or waiting for a thread."""
        with self._lock:
            return self._accepted

    @property
    def idle(self) -> int:
        """Threads that would start an item submitted now."""
        with self._lock:
            return max(0, self.size - self._accepted)

    @property
    def mean_run_seconds(self) -> float | None:
        """A running mean of how long items took, None before the first."""
        with self._lock:
            return self._mean_run_seconds

    def submit(self, item: T) -> None:
        with self._lock:
            if self._accepted >= self.size + self.buffer:
                raise RuntimeError("ExecutionPool.submit: no idle thread and the buffer is full")
            self._accepted += 1
        self._queue.put(item)

    def stop_starting(self) -> None:
        """Start no more items: those still waiting become ``take_unstarted()``'s."""
        with self._lock:
            self._starting = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._set_aside(item)

    def take_unstarted(self) -> list[T]:
        """The items accepted but never started since ``stop_starting()``."""
        with self._lock:
            items, self._unstarted = self._unstarted, []
            return items

    def wait_idle(self, timeout: float, still_busy: Callable[[], int] = lambda: 0) -> bool:
        """Wait until no job runs but the ``still_busy()`` ones, which are no
        longer waited for; False if others still run after ``timeout``."""
        with self._lock:
            return self._lock.wait_for(lambda: self._running <= still_busy(), timeout)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _set_aside(self, item: T) -> None:
        with self._lock:
            self._unstarted.append(item)
            self._accepted -= 1
            self._lock.notify_all()

    def _run_one(self, item: T) -> T | None:
        """Run ``item``; return the next one this thread should run, if any."""
        started = time.monotonic()
        try:
            following = self._run(item)
        except Exception:
            # ``run`` records job outcomes itself; reaching here is a bug, and
            # the thread must outlive it.
            logger.exception("unexpected error in %s", threading.current_thread().name)
            following = None
        self._ran_for(time.monotonic() - started)
        if following is not None:
            return following
        try:
            return self._next_item()
        except Exception:
            # The database failing ``next_item``: the thread goes idle instead.
            logger.exception("unexpected error in %s", threading.current_thread().name)
            return None

    def _ran_for(self, seconds: float) -> None:
        with self._lock:
            mean = self._mean_run_seconds
            self._mean_run_seconds = (
                seconds if mean is None else mean + RUN_TIME_WEIGHT * (seconds - mean)
            )

    def _begin(self, item: T) -> bool:
        with self._lock:
            if not self._starting:
                starting = False
            else:
                starting = True
                self._running += 1
        if not starting:
            self._set_aside(item)
        return starting

    def _serve(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if not self._begin(item):
                    continue
                following: T | None = item
                while following is not None:
                    following = self._run_one(following)
                with self._lock:
                    self._running -= 1
                    self._accepted -= 1
                    self._lock.notify_all()
                self._on_done()
        finally:
            close_thread_connections()
