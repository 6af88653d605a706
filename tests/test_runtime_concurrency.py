"""Concurrency limits end to end: real ``manage.py dj_queue`` runtimes, a ledger
the tasks write themselves, and the limit checked at every instant."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.db import connections
from django.tasks import TaskResultStatus, default_task_backend

from dj_queue.models import BlockedExecution, ClaimedExecution, Process, Semaphore
from tests.conftest import finished, options_env, wait_until
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import ledger_run, ledger_single, ledger_singleton, slow_exclusive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ledger(tmp_path) -> Path:
    path = tmp_path / "ledger.txt"
    path.touch()
    return path


def read_ledger(path: Path) -> list[tuple[str, str, int, int]]:
    """(event, key, n, time ns) per line, in time order (ends first at a tie)."""
    events = []
    for line in path.read_text().splitlines():
        event, key, n, at, _pid = line.split()
        events.append((event, key, int(n), int(at)))
    return sorted(events, key=lambda e: (e[3], e[0] == "start"))


def peak_per_key(events) -> dict[str, int]:
    """The most runs of each key that were running at one instant."""
    running: Counter[str] = Counter()
    peak: dict[str, int] = defaultdict(int)
    for event, key, _, _ in events:
        running[key] += 1 if event == "start" else -1
        peak[key] = max(peak[key], running[key])
    return dict(peak)


def peak_overall(events) -> int:
    running = best = 0
    for event, *_ in events:
        running += 1 if event == "start" else -1
        best = max(best, running)
    return best


def all_finished(results) -> bool:
    return all(finished(result) for result in results)


def test_the_spec_example_one_account_at_a_time_others_in_parallel(start_runtime, ledger):
    results = [ledger_single.enqueue("acct-1", n, 0.3, str(ledger)) for n in range(3)]
    results += [ledger_single.enqueue(f"acct-{n}", n, 0.3, str(ledger)) for n in (2, 3, 4)]
    # Account 1's later jobs wait for the slot its first one holds.
    assert BlockedExecution.objects.filter(concurrency_key="single:acct-1").count() == 2
    runtime = start_runtime()

    wait_until(lambda: all_finished(results), message=runtime.log())

    assert {r.status for r in results} == {TaskResultStatus.SUCCESSFUL}
    events = read_ledger(ledger)
    assert peak_per_key(events) == {f"acct-{n}": 1 for n in (1, 2, 3, 4)}
    assert peak_overall(events) >= 2, "other accounts ran beside account 1"
    # Account 1's jobs ran in turn, in the order they were enqueued.
    assert [n for e, key, n, _ in events if e == "start" and key == "acct-1"] == [0, 1, 2]
    assert runtime.stop() == 0
    assert Semaphore.objects.get(key="single:acct-1").value == 1
    assert_invariants()


def test_discard_drops_a_duplicate_while_the_first_runs_then_the_key_is_free(start_runtime, ledger):
    runtime = start_runtime()
    first = ledger_singleton.enqueue("nightly", 1, 1.0, str(ledger))
    wait_until(lambda: state_of(first.id) == "claimed", message=runtime.log())

    duplicate = ledger_singleton.enqueue("nightly", 2, 0, str(ledger))

    assert duplicate.status == TaskResultStatus.SUCCESSFUL and duplicate.attempts == 0
    wait_until(lambda: finished(first), message=runtime.log())
    again = ledger_singleton.enqueue("nightly", 3, 0, str(ledger))
    wait_until(lambda: finished(again), message=runtime.log())
    assert (first.attempts, again.attempts) == (1, 1)
    assert [n for e, _, n, _ in read_ledger(ledger) if e == "start"] == [1, 3]
    assert runtime.stop() == 0
    assert_invariants()


def test_a_killed_worker_child_hands_its_slot_on_at_once(start_runtime, ledger):
    runtime = start_runtime("--mode", "fork")
    holder = ledger_single.enqueue("k", 1, 60, str(ledger))
    waiting = ledger_single.enqueue("k", 2, 0, str(ledger))
    worker = wait_until(
        lambda: (c := ClaimedExecution.objects.select_related("process").first()) and c.process,
        message=runtime.log(),
    )

    os.kill(worker.pid, signal.SIGKILL)

    wait_until(lambda: finished(waiting), timeout=15, message=runtime.log())
    holder.refresh()
    assert holder.status == TaskResultStatus.FAILED
    assert holder.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessExitError"
    assert waiting.status == TaskResultStatus.SUCCESSFUL
    assert runtime.stop() == 0
    assert_invariants()


def test_expiry_and_maintenance_free_a_key_whose_holder_was_killed_with_its_node(
    start_runtime, ledger
):
    # Pruning would recover the dead node's claim only after 60 s: here the
    # semaphore's 2 s expiry is what frees the key.
    slow_prune = {"process_alive_threshold": 60}
    dead = start_runtime("--only-work", extra_env=options_env(**slow_prune))
    holder = slow_exclusive.enqueue("x", 1, 60, str(ledger))
    waiting = slow_exclusive.enqueue("x", 2, 0, str(ledger))
    wait_until(lambda: state_of(holder.id) == "claimed", message=dead.log())
    dead.kill_tree()

    maintained = options_env(
        **slow_prune,
        dispatchers=[
            {"batch_size": 100, "polling_interval": 0.1, "concurrency_maintenance_interval": 0.5}
        ],
    )
    live = start_runtime(extra_env=maintained)

    wait_until(lambda: finished(waiting), timeout=20, message=live.log())
    assert waiting.status == TaskResultStatus.SUCCESSFUL
    assert state_of(holder.id) == "claimed", "the dead holder's claim was not what freed the key"
    assert "concurrency maintenance expired 1 semaphore(s), released 1" in live.log()
    assert live.stop() == 0


def test_stress_many_enqueuers_two_workers_five_keys_limit_two(start_runtime, ledger):
    keys, per_thread, threads = 5, 125, 8
    options = options_env(workers=[{"queues": ["*"], "threads": 4, "processes": 2}])
    runtime = start_runtime("--mode", "fork", extra_env=options)
    results: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def enqueue(thread: int) -> None:
        try:
            for i in range(per_thread):
                n = thread * per_thread + i
                result = ledger_run.enqueue(f"k{n % keys}", n, 0.005, str(ledger))
                with lock:
                    results.append(result)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    enqueuers = [threading.Thread(target=enqueue, args=(t,)) for t in range(threads)]
    for thread in enqueuers:
        thread.start()
    for thread in enqueuers:
        thread.join()
    assert not errors, errors
    assert len(results) == per_thread * threads

    def done() -> bool:
        ends = sum(1 for line in ledger.read_text().splitlines() if line.startswith("end "))
        return ends >= len(results)

    wait_until(done, timeout=120, interval=0.2, message=runtime.log())
    wait_until(lambda: not ClaimedExecution.objects.exists(), message=runtime.log())

    events = read_ledger(ledger)
    starts = Counter(n for event, _, n, _ in events if event == "start")
    assert len(starts) == len(results) and set(starts.values()) == {1}, "each ran exactly once"
    peaks = peak_per_key(events)
    assert set(peaks) == {f"k{k}" for k in range(keys)}
    assert max(peaks.values()) <= 2, peaks
    assert peak_overall(events) >= 2, "keys ran in parallel"
    statuses = Counter(default_task_backend.get_result(result.id).status for result in results[:50])
    assert statuses == {TaskResultStatus.SUCCESSFUL: 50}
    assert not BlockedExecution.objects.exists()
    assert set(Semaphore.objects.values_list("value", flat=True)) == {2}
    assert runtime.stop() == 0
    assert not Process.objects.exists()
    assert_invariants()
