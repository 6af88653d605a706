"""A fixed set of daemon threads that run claimed jobs.

Daemon threads, unlike ``concurrent.futures``, never hold the process open: when
a shutdown times out, a job still running is abandoned (and failed by the
deregistration) instead of blocking exit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
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
        # Items waiting for a thread, with when each was accepted; None stops a thread.
        self._waiting: deque[tuple[T | None, float]] = deque()
        self._accepted = 0  # running or waiting in the buffer
        self._running = 0
        # How many more items may start; None: no limit (until stop_starting).
        self._may_start: int | None = None
        self._unstarted: list[T] = []
        # The item each thread runs, by thread ident.
        self._current: dict[int, T] = {}
        self._mean_run_seconds: float | None = None
        mutex = threading.Lock()
        # Notified when an item stops running (wait_idle) ...
        self._lock = threading.Condition(mutex)
        # ... and when one is waiting for a thread.
        self._work = threading.Condition(mutex)
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

    def held(self) -> list[T]:
        """The items running or waiting for a thread."""
        with self._lock:
            waiting = [item for item, _ in self._waiting if item is not None]
            return waiting + list(self._current.values())

    def submit(self, item: T) -> None:
        with self._lock:
            if self._accepted >= self.size + self.buffer:
                raise RuntimeError("ExecutionPool.submit: no idle thread and the buffer is full")
            self._accepted += 1
            self._waiting.append((item, time.monotonic()))
            self._work.notify()

    def take_waiting_longer_than(self, seconds: float) -> list[T]:
        """Take back the items that have waited for a thread more than ``seconds``."""
        cutoff = time.monotonic() - seconds
        taken: list[T] = []
        with self._lock:
            # Oldest first: the first one young enough ends the search.
            while self._waiting and (entry := self._waiting[0])[1] <= cutoff:
                if entry[0] is None:
                    break
                taken.append(entry[0])
                self._waiting.popleft()
            self._accepted -= len(taken)
        return taken

    def stop_starting(self) -> None:
        """Start no more items than the idle threads are about to take: the
        others still waiting become ``take_unstarted()``'s."""
        with self._lock:
            self._may_start = max(0, self.size - self._running)
            waiting: deque[tuple[T | None, float]] = deque()
            kept = 0
            for item, at in self._waiting:
                if item is not None and kept >= self._may_start:
                    self._unstarted.append(item)
                    self._accepted -= 1
                    continue
                kept += item is not None
                waiting.append((item, at))
            self._waiting = waiting

    def take_unstarted(self) -> list[T]:
        """The items accepted but never started since ``stop_starting()``."""
        with self._lock:
            items, self._unstarted = self._unstarted, []
            return items

    def wait_idle(self, timeout: float, still_busy: Callable[[], int] = lambda: 0) -> bool:
        """Wait until no job runs but the ``still_busy()`` ones, which are no
        longer waited for; False if others still run after ``timeout``."""
        with self._lock:
            # Accepted, not running: an item an idle thread is about to start counts.
            return self._lock.wait_for(lambda: self._accepted <= still_busy(), timeout)

    def close(self) -> None:
        with self._lock:
            self._waiting.extend((None, time.monotonic()) for _ in self._threads)
            self._work.notify_all()

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

    def _next(self) -> T | None:
        """The next item to run, waiting for one; None when the pool closes."""
        with self._lock:
            while True:
                self._work.wait_for(lambda: bool(self._waiting))
                item, _ = self._waiting.popleft()
                if item is None:
                    return None
                if self._may_start is None or self._may_start > 0:
                    if self._may_start is not None:
                        self._may_start -= 1
                    self._running += 1
                    self._current[threading.get_ident()] = item
                    return item
                self._unstarted.append(item)
                self._accepted -= 1

    def _serve(self) -> None:
        try:
            while (item := self._next()) is not None:
                following: T | None = item
                while following is not None:
                    following = self._run_one(following)
                    if following is not None:
                        with self._lock:
                            self._current[threading.get_ident()] = following
                with self._lock:
                    self._current.pop(threading.get_ident(), None)
                    self._running -= 1
                    self._accepted -= 1
                    self._lock.notify_all()
                self._on_done()
        finally:
            close_thread_connections()
