"""Consumer processes for the raw reference: spawning, messaging, and the drain loop.

Children are spawned from a clean interpreter (no fork of a Django-laden parent) and
report over a queue as ``(kind, pid, payload)``: "ready" once connected, then "done"
or "error" with a traceback.
"""

from __future__ import annotations

import os
import queue
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.raw.base import Dialect, Worker


@contextmanager
def processes(
    context: Any, target: Callable[..., None], arguments: tuple[Any, ...], count: int
) -> Iterator[list[Any]]:
    """Started child processes, always reaped (terminated if still running) on exit."""
    children = [context.Process(target=target, args=arguments, daemon=True) for _ in range(count)]
    try:
        for child in children:
            child.start()
        yield children
    finally:
        for child in children:
            if child.pid is not None:
                child.join(timeout=5)
                if child.is_alive():
                    child.terminate()
                    child.join()


def collect(messages: Any, children: list[Any], kind: str, timeout: float) -> list[Any]:
    """One ``kind`` message from every process; raise on a child's error or death."""
    deadline = time.monotonic() + timeout
    results: list[Any] = []
    while len(results) < len(children):
        try:
            got, pid, payload = messages.get(timeout=0.2)
        except queue.Empty:
            dead = [p.pid for p in children if not p.is_alive() and p.exitcode != 0]
            if dead:
                raise RuntimeError(f"consumer process(es) {dead} died") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {kind!r} from consumers: gave up") from None
            continue
        if got == "error":
            raise RuntimeError(f"consumer {pid} failed:\n{payload['traceback']}")
        if got != kind:
            raise RuntimeError(f"consumer {pid}: expected {kind!r}, got {got!r}")
        results.append(payload)
    return results


def consume(dialect: Dialect, limit: int, start: Any, messages: Any) -> None:
    """A drain consumer: claim and finish until no ready row is left."""
    try:
        worker = Worker(dialect)
        messages.put(("ready", os.getpid(), {}))
        start.wait()
        jobs = 0
        last_finish = time.monotonic()
        while True:
            taken = worker.step(limit)
            if taken:
                jobs += taken
                last_finish = time.monotonic()  # system-wide clock on Linux: comparable
            elif worker.ready_left():
                time.sleep(0.001)
            else:
                break
        messages.put(
            (
                "done",
                os.getpid(),
                {"jobs": jobs, "last_finish": last_finish, "retries": worker.retries},
            )
        )
        worker.close()
    except BaseException:
        messages.put(("error", os.getpid(), {"traceback": traceback.format_exc()}))
