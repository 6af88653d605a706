"""Retries and timeouts end to end, through real ``manage.py dj_queue`` processes."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone

from dj_queue.models import Process
from tests.conftest import finished, options_env, wait_until
from tests.invariants import assert_invariants
from tests.taskapp.tasks import (
    add,
    crash_never_retried,
    crash_once,
    flaky,
    limited_flaky,
    overrun,
    overrun_in_python,
    picky,
)

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_ERROR = "dj_queue.exceptions.JobTimeoutError"


def read_pid(path, log):
    return int(wait_until(lambda: path.exists() and path.read_text(), message=log()))


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_a_task_failing_twice_succeeds_on_its_third_attempt(start_runtime, mode):
    runtime = start_runtime("--mode", mode)
    result = flaky.enqueue(2)
    never = picky.enqueue("type")  # TypeError is not in its retry_on

    wait_until(lambda: finished(result) and finished(never), message=runtime.log())

    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        3,
        3,
    )
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"] * 2
    assert len(result.worker_ids) == 3
    assert (never.status, never.attempts) == (TaskResultStatus.FAILED, 1)
    assert runtime.stop() == 0
    assert_invariants()


def test_task_finished_is_sent_for_the_final_outcome_only(start_runtime, tmp_path):
    ledger = tmp_path / "signals.log"
    runtime = start_runtime(extra_env={"DJ_QUEUE_TEST_SIGNAL_LEDGER": str(ledger)})
    result = flaky.enqueue(2)
    wait_until(lambda: finished(result), message=runtime.log())
    assert runtime.stop() == 0
    lines = ledger.read_text().split()
    assert lines.count(f"started:{result.id}") == 3
    assert lines.count(f"finished:{result.id}:SUCCESSFUL") == 1
    assert len([line for line in lines if line.startswith("finished:")]) == 1


def test_a_sigkilled_worker_s_job_is_retried_and_succeeds(start_runtime, tmp_path):
    runtime = start_runtime("--mode", "fork")
    marker = tmp_path / "pid"
    result = crash_once.enqueue(str(marker))
    pid = read_pid(marker, runtime.log)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    wait_until(lambda: finished(result), timeout=20, message=runtime.log())
    recovered_in = time.monotonic() - killed_at

    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        2,
        2,
    )
    error = result.errors[0]
    assert error.exception_class_path == "dj_queue.exceptions.ProcessExitError"
    assert "SIGKILL" in error.traceback
    assert recovered_in < 10
    assert runtime.stop() == 0
    assert_invariants()


def test_a_process_death_outside_retry_on_ends_failed(start_runtime, tmp_path):
    runtime = start_runtime("--mode", "fork")
    marker = tmp_path / "pid"
    result = crash_never_retried.enqueue(str(marker))
    os.kill(read_pid(marker, runtime.log), signal.SIGKILL)

    wait_until(lambda: finished(result), timeout=20, message=runtime.log())
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 1)
    assert result.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessExitError"
    assert runtime.stop() == 0


def test_a_node_killed_whole_is_pruned_and_its_job_retried_by_the_survivor(start_runtime, tmp_path):
    marker = tmp_path / "pid"
    doomed = start_runtime("--mode", "fork")
    result = crash_once.enqueue(str(marker))
    read_pid(marker, doomed.log)
    survivor = start_runtime("--mode", "fork")

    doomed.kill_tree()

    # process_alive_threshold is 5 s in the test settings.
    wait_until(lambda: finished(result), timeout=30, message=survivor.log())
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 2)
    assert result.errors[0].exception_class_path == "dj_queue.exceptions.ProcessPrunedError"
    assert survivor.stop() == 0
    assert_invariants()


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_an_attempt_past_its_timeout_fails_promptly_and_the_worker_goes_on(start_runtime, mode):
    runtime = start_runtime("--mode", mode)
    workers_before = set(Process.objects.filter(kind="worker").values_list("pk", flat=True))
    result = overrun.enqueue(30)  # timeout 1 s, blocked in time.sleep
    wait_until(lambda: result.refresh() or result.status == TaskResultStatus.RUNNING)
    started = timezone.now()

    wait_until(lambda: finished(result), timeout=10, message=runtime.log())

    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == TIMEOUT_ERROR
    assert (result.finished_at - started).total_seconds() < 3
    later = add.enqueue(2, 3)
    wait_until(lambda: finished(later), timeout=20, message=runtime.log())
    assert later.return_value == 5
    workers_after = set(Process.objects.filter(kind="worker").values_list("pk", flat=True))
    if mode == "fork":
        # The worker that ran it retired and a fresh one took its place.
        assert workers_after and not workers_after & workers_before
    else:
        assert workers_after == workers_before
    assert runtime.stop() == 0
    assert_invariants()


def test_in_async_mode_python_code_past_its_timeout_is_stopped(start_runtime, tmp_path):
    runtime = start_runtime("--mode", "async")
    result = overrun_in_python.enqueue(30)
    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    assert result.errors[-1].exception_class_path == TIMEOUT_ERROR
    # The interrupted thread went back to work: every thread serves again.
    batch = [add.enqueue(i, i) for i in range(8)]
    wait_until(lambda: all(finished(r) for r in batch), timeout=20, message=runtime.log())
    assert "stopped after its timeout" in runtime.log()
    assert runtime.stop() == 0


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_retries_timeouts_and_a_concurrency_limit_together_never_exceed_the_limit(
    start_runtime, tmp_path, mode
):
    ledger = tmp_path / "ledger"
    ledger.touch()
    runtime = start_runtime(
        "--mode",
        mode,
        extra_env=options_env(
            workers=[{"queues": ["*"], "threads": 4, "processes": 2, "polling_interval": 0.05}]
        ),
    )
    results = [limited_flaky.enqueue(key, n, 0.05, str(ledger)) for key in "ab" for n in range(3)]

    wait_until(lambda: all(finished(r) for r in results), timeout=60, message=runtime.log())

    assert {r.status for r in results} == {TaskResultStatus.SUCCESSFUL}
    assert {r.attempts for r in results} == {3}
    assert {tuple(e.exception_class_path for e in r.errors) for r in results} == {
        (TIMEOUT_ERROR, "builtins.ValueError")
    }
    assert max_overlap(ledger.read_text()) == {"a": 1, "b": 1}
    assert runtime.stop() == 0, runtime.log()
    assert_invariants()


def max_overlap(text: str) -> dict[str, int]:
    """The most runs of each key that were between their start and their end at once."""
    events = []
    for line in text.splitlines():
        kind, key, _n, at, _pid = line.split()
        events.append((int(at), 0 if kind == "end" else 1, key))
    running: dict[str, int] = defaultdict(int)
    most: dict[str, int] = defaultdict(int)
    for _, starts, key in sorted(events):
        running[key] += 1 if starts else -1
        most[key] = max(most[key], running[key])
    return dict(most)
