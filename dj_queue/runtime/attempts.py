"""The attempts running on a worker's threads, and stopping one of them.

A worker thread runs each attempt inside ``RunningAttempts.watch``; the
worker's own loop asks for the ``overdue()`` ones (past their job's
``timeout``) or ``take()``s one it was asked to cancel, records its outcome
through the operations layer, then calls ``interrupt``: the given exception
(``JobTimeoutError``, ``JobCancelledError``) is raised in the attempt's thread
at its next Python instruction. Code blocked inside a C call (``time.sleep``, a socket read
without a timeout, a long query) only sees it once that call returns, which is
why a forked worker is also retired and replaced after stopping one.
"""

from __future__ import annotations

import ctypes
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..models import Job


@dataclass(eq=False)
class Attempt:
    job: Job
    thread_id: int
    deadline: float | None  # time.monotonic(); None without a timeout
    started: float = field(default_factory=time.monotonic)
    inside: bool = True  # the thread is still inside watch()
    interrupted: bool = False
    # The worker recorded the timeout but kept the job's concurrency slot,
    # which is given back once the attempt's code has stopped.
    holds_slot: bool = False

    @property
    def timeout(self) -> float:
        return float(self.job.timeout or 0.0)


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    """Ask the interpreter to raise ``exception`` in thread ``thread_id`` (None
    withdraws a request not yet delivered)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None
    )


class RunningAttempts:
    """The attempts running on one worker's threads.

    ``give_back`` is called, once, for an attempt that ``keep_slot`` marked,
    when its code has stopped (or when the worker ends with it still stuck).
    """

    def __init__(self, give_back: Callable[[Attempt], None] = lambda attempt: None) -> None:
        self._lock = threading.Lock()
        self._running: dict[uuid.UUID, Attempt] = {}
        self._stuck: dict[uuid.UUID, Attempt] = {}
        # (job id, thread id) of attempts whose outcome the worker recorded.
        self._settled: set[tuple[uuid.UUID, int]] = set()
        self._give_back = give_back

    @contextmanager
    def watch(self, job: Job) -> Iterator[None]:
        deadline = None if job.timeout is None else time.monotonic() + float(job.timeout)
        attempt = Attempt(job, threading.get_ident(), deadline)
        with self._lock:
            self._running[job.id] = attempt
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(job.id, None)
                self._stuck.pop(job.id, None)
                attempt.inside = False
                if attempt.interrupted:
                    # The attempt ended on its own before the request landed:
                    # the code after it must not receive it.
                    _raise_in_thread(attempt.thread_id, None)
                give_back = attempt.holds_slot
            if give_back:
                self._give_back(attempt)

    def next_deadline(self) -> float | None:
        with self._lock:
            deadlines = [a.deadline for a in self._running.values() if a.deadline is not None]
        return min(deadlines, default=None)

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def overdue(self) -> list[Attempt]:
        """The attempts past their deadline, each handed out once."""
        now = time.monotonic()
        with self._lock:
            late = [
                a for a in self._running.values() if a.deadline is not None and a.deadline <= now
            ]
            for attempt in late:
                del self._running[attempt.job.id]
        return late

    def take(self, job_ids: Iterable[uuid.UUID]) -> list[Attempt]:
        """The running attempts of ``job_ids`` (to be stopped), each handed out once."""
        with self._lock:
            return [a for job_id in job_ids if (a := self._running.pop(job_id, None))]

    def watch_again(self, attempt: Attempt) -> None:
        """Hand an attempt out again (its outcome could not be recorded)."""
        with self._lock:
            if attempt.inside:
                self._running[attempt.job.id] = attempt

    def settled(self, attempt: Attempt, *, slot_kept: bool) -> None:
        """The worker recorded the attempt's outcome. With ``slot_kept`` (a
        limited job), the slot is given back now if the attempt has already
        stopped, else once it does."""
        with self._lock:
            self._settled.add((attempt.job.id, attempt.thread_id))
            if attempt.inside:
                attempt.holds_slot = slot_kept
                self._stuck[attempt.job.id] = attempt
                return
        if slot_kept:
            self._give_back(attempt)

    def settled_by_worker(self, job: Job) -> bool:
        """Asked by the thread that ran ``job`` once its attempt ended: whether
        the worker recorded the attempt's outcome already (a timeout, a cancel).
        Its own late outcome is then not recorded: by then the job may be
        claimed again, by this very process, for its next attempt."""
        with self._lock:
            key = (job.id, threading.get_ident())
            settled = key in self._settled
            self._settled.discard(key)
            return settled

    def stuck(self) -> int:
        """How many attempts are still running although their outcome was recorded."""
        with self._lock:
            return len(self._stuck)

    def give_back_stuck(self) -> None:
        """At the worker's end: the slots of attempts whose code never stopped
        (the process is about to exit, and their threads with it)."""
        with self._lock:
            stuck = [attempt for attempt in self._stuck.values() if attempt.holds_slot]
            for attempt in stuck:
                attempt.holds_slot = False
        for attempt in stuck:
            self._give_back(attempt)

    def interrupt(self, attempt: Attempt, exception: type[BaseException]) -> bool:
        """Raise ``exception`` in the attempt's thread if it is still inside it;
        False if it has already left."""
        with self._lock:
            if not attempt.inside or attempt.interrupted:
                return False
            attempt.interrupted = True
            _raise_in_thread(attempt.thread_id, exception)
            return True
