"""Batched completions and claims in real runtimes: what a worker holds
between its threads finishing jobs and its loop recording them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.tasks import TaskResultStatus

from dj_queue.models import ClaimedExecution, Job, ReadyExecution
from tests.conftest import finished, options_env, wait_until
from tests.invariants import assert_invariants
from tests.taskapp.tasks import add, finish_then_die, sleep_for

pytestmark = pytest.mark.django_db(transaction=True)


def worker_options(**worker) -> dict[str, str]:
    return options_env(
        workers=[{"queues": ["*"], "threads": 2, "polling_interval": 0.05, **worker}]
    )


def test_a_worker_killed_before_recording_its_finished_job_has_it_run_again(
    start_runtime, tmp_path: Path
):
    """At least once: the outcome handed over but not yet recorded dies with
    the process; the job is recovered like any claimed job, retried by its
    policy, and the second run's outcome is recorded at the graceful stop."""
    marker = tmp_path / "pid"
    # A long window: the outcome of attempt 1 surely waits when the kill lands.
    runtime = start_runtime("--mode", "fork", extra_env=worker_options(completion_window=30))
    result = finish_then_die.enqueue(str(marker))
    pid = int(wait_until(lambda: marker.exists() and marker.read_text(), message=runtime.log()))

    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: (
            Job.objects.filter(pk=result.id).values_list("worker_ids", flat=True)[0]
            and len(Job.objects.get(pk=result.id).worker_ids) == 2
        ),
        timeout=30,
        message=runtime.log(),
    )
    assert not finished(result)  # attempt 2's outcome is waiting in its batch too

    assert runtime.stop() == 0
    assert finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2
    assert [e.exception_class_path for e in result.errors] == [
        "dj_queue.exceptions.ProcessExitError"
    ]
    assert_invariants()


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_a_stopping_worker_gives_its_unstarted_jobs_back(start_runtime, mode):
    """Jobs claimed into the buffer but never started go back to ready, with no
    attempt counted, when the worker stops."""
    runtime = start_runtime(
        "--mode", mode, extra_env=worker_options(threads=1, prefetch=4, completion_window=0.005)
    )
    # Short jobs first, so that the worker judges its jobs quick and buffers some.
    quick = [add.enqueue(n, n) for n in range(20)]
    wait_until(lambda: all(finished(r) for r in quick), message=runtime.log())
    slow = [sleep_for.enqueue(0.4) for _ in range(6)]
    wait_until(lambda: ClaimedExecution.objects.count() >= 2, message=runtime.log())

    assert runtime.stop() == 0

    states = {r.id: (finished(r), r.status) for r in slow}
    ran = [job_id for job_id, (done, _) in states.items() if done]
    waiting = [job_id for job_id, (done, _) in states.items() if not done]
    assert all(states[job_id][1] == TaskResultStatus.SUCCESSFUL for job_id in ran)
    assert waiting, "the stop came after every job ran; nothing was left to give back"
    assert set(ReadyExecution.objects.values_list("job_id", flat=True)) == set(
        Job.objects.filter(pk__in=waiting).values_list("pk", flat=True)
    )
    assert not Job.objects.filter(pk__in=waiting).exclude(worker_ids=[]).exists()
    assert_invariants()
