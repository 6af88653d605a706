"""Batched completions and claims in real runtimes: what a worker holds
between its threads finishing jobs and its loop recording them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.db import connection
from django.tasks import TaskResultStatus, default_task_backend

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
    the process; the job is recovered like any claimed job and retried by its
    policy. Had attempt 1's success been recorded, the job would have ended
    there, with return value 1 and no error."""
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
    # Attempt 2's outcome may still wait in its batch: a graceful stop records it.
    assert runtime.stop() == 0, runtime.log()
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

    assert runtime.stop() == 0, runtime.log()

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


# Enough jobs that the deadlocks this guards against (a few per 10,000 before)
# would surely show.
JOBS = 8000


def innodb_deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        return int(cursor.fetchone()[1])


@pytest.mark.skipif(connection.vendor != "mysql", reason="InnoDB's deadlock counter")
@pytest.mark.parametrize("window", [0.005, 0], ids=["batched", "per-job"])
def test_a_drain_by_three_worker_processes_meets_no_deadlock(start_runtime, window):
    """Completions lock only their own claim rows and claims skip the rows
    others hold, so InnoDB never has to break a deadlock (the retry would hide
    one: the counter does not)."""
    before = innodb_deadlocks()
    backend = default_task_backend
    for start in range(0, JOBS, 500):
        backend.enqueue_all([(add, (n, n), {}) for n in range(start, start + 500)])
    start_runtime(
        "--mode",
        "fork",
        "--only-work",
        extra_env=worker_options(threads=4, processes=3, completion_window=window),
    )

    wait_until(lambda: not Job.objects.filter(finished_at__isnull=True).exists(), timeout=120)

    assert innodb_deadlocks() - before == 0
    assert assert_invariants() == {"finished": JOBS}
