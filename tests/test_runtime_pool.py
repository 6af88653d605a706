"""``ExecutionPool``: threads, the buffer beyond them, and items never started."""

from __future__ import annotations

import threading
import time

import pytest

from dj_queue.runtime.pool import ExecutionPool


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.005)


class Gate:
    """Items are names; each runs until its name is released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.released: set[str] = set()
        self.lock = threading.Condition()

    def run(self, item: str) -> None:
        with self.lock:
            self.started.append(item)
            self.lock.wait_for(lambda: item in self.released or "all" in self.released)

    def release(self, *items: str) -> None:
        with self.lock:
            self.released.update(items)
            self.lock.notify_all()


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.release("all")


def test_items_beyond_the_threads_wait_in_the_buffer_and_start_in_order(gate):
    pool = ExecutionPool(2, gate.run, lambda: None, name="t", buffer=2)
    for item in "abcd":
        pool.submit(item)

    wait_for(lambda: len(gate.started) == 2)
    assert (pool.accepted, pool.idle) == (4, 0)
    with pytest.raises(RuntimeError, match="buffer is full"):
        pool.submit("e")
    gate.release("a")
    wait_for(lambda: len(gate.started) == 3)
    assert gate.started == ["a", "b", "c"]
    assert pool.accepted == 3
    pool.close()


def test_stopped_pools_hand_back_what_never_started(gate):
    pool = ExecutionPool(1, gate.run, lambda: None, name="t", buffer=3)
    for item in "abc":
        pool.submit(item)
    wait_for(lambda: gate.started == ["a"])

    pool.stop_starting()
    gate.release("a")

    assert pool.wait_idle(5)
    assert pool.take_unstarted() == ["b", "c"]
    assert gate.started == ["a"]
    assert pool.accepted == 0
    pool.close()


def test_items_waiting_too_long_are_taken_back_oldest_first(gate):
    pool = ExecutionPool(1, gate.run, lambda: None, name="t", buffer=3)
    pool.submit("a")
    pool.submit("b")
    wait_for(lambda: gate.started == ["a"])
    time.sleep(0.05)
    pool.submit("c")

    assert pool.take_waiting_longer_than(0.04) == ["b"]
    assert pool.accepted == 2
    gate.release("a")
    wait_for(lambda: gate.started == ["a", "c"])
    pool.close()


def test_the_mean_run_time_follows_recent_items():
    pool = ExecutionPool(1, lambda seconds: time.sleep(seconds), lambda: None, name="t")
    assert pool.mean_run_seconds is None
    pool.submit(0.05)
    wait_for(lambda: pool.mean_run_seconds is not None)
    first = pool.mean_run_seconds
    assert first is not None and first >= 0.05
    for _ in range(10):
        pool.submit(0.0)
        wait_for(lambda: pool.accepted == 0)
    later = pool.mean_run_seconds
    assert later is not None and later < first / 2
    pool.close()


def test_a_stopping_pool_hands_back_only_what_its_threads_are_not_running(gate):
    pool = ExecutionPool(2, gate.run, lambda: None, name="t", buffer=2)
    for item in "abcd":
        pool.submit(item)
    wait_for(lambda: sorted(gate.started) == ["a", "b"])

    pool.stop_starting()
    gate.release("all")

    assert pool.wait_idle(5)
    assert pool.take_unstarted() == ["c", "d"]
    assert sorted(gate.started) == ["a", "b"]
    pool.close()


def test_held_lists_the_running_and_the_waiting_items_until_they_end(gate):
    pool = ExecutionPool(2, gate.run, lambda: None, name="t", buffer=2)
    for item in "abc":
        pool.submit(item)
    wait_for(lambda: len(gate.started) == 2)

    assert sorted(pool.held()) == ["a", "b", "c"]
    gate.release("a", "c")
    wait_for(lambda: pool.accepted == 1)
    assert pool.held() == ["b"]
    gate.release("b")
    wait_for(lambda: pool.accepted == 0)
    assert pool.held() == []
    pool.close()
