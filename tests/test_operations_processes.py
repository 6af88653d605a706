"""The process registry: register, heartbeat, deregister and prune."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from dj_queue.models import ClaimedExecution, FailedExecution, Job, Process
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.processes import (
    deregister_process,
    heartbeat,
    prune_dead_processes,
    register_process,
)
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add

pytestmark = pytest.mark.django_db

EXIT_ERROR = "dj_queue.exceptions.ProcessExitError"
PRUNED_ERROR = "dj_queue.exceptions.ProcessPrunedError"


def register(name: str, **extra) -> Process:
    return register_process("default", kind="worker", name=name, backend_alias="default", **extra)


def claim_new_jobs(process: Process, count: int) -> list[str]:
    for _ in range(count):
        add.enqueue(1, 2)
    jobs = claim_jobs(
        "default", process_id=process.id, worker_id=process.name, selectors=["*"], limit=count
    )
    assert len(jobs) == count
    return [str(job.id) for job in jobs]


def set_heartbeat_age(process: Process, seconds: float) -> None:
    Process.objects.filter(pk=process.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def database_now() -> datetime:
    """The database clock, read through a query (any process row will do)."""
    return Process.objects.annotate(now=Now()).values_list("now", flat=True)[0]


# -- register and heartbeat ----------------------------------------------------


def test_register_process_writes_the_process_row():
    process = register("worker-a", metadata={"queues": ["*"], "threads": 2}, supervisor_id=None)

    stored = Process.objects.get(pk=process.pk)
    assert (stored.kind, stored.name, stored.backend_alias) == ("worker", "worker-a", "default")
    assert (stored.pid, stored.hostname) == (os.getpid(), socket.gethostname())
    assert stored.metadata == {"queues": ["*"], "threads": 2}
    assert stored.supervisor_id is None
    assert process.last_heartbeat_at == stored.last_heartbeat_at


def test_register_process_links_the_supervisor():
    supervisor = register_process(
        "default", kind="supervisor", name="supervisor-a", backend_alias="default"
    )

    worker = register("worker-a", supervisor_id=supervisor.pk)

    assert Process.objects.get(pk=worker.pk).supervisor_id == supervisor.pk


def test_register_process_stamps_the_heartbeat_with_the_database_clock():
    process = register("worker-a")

    after = database_now()
    assert isinstance(process.last_heartbeat_at, datetime)
    assert process.last_heartbeat_at <= after
    assert after - process.last_heartbeat_at < timedelta(minutes=5)


@pytest.mark.skipif(
    connection.vendor != "mysql", reason="MariaDB/MySQL only: SET timestamp fakes its clock"
)
def test_heartbeat_comes_from_the_database_clock_not_python():
    fake_now = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute("SET timestamp = %s", [int(fake_now.timestamp())])
    try:
        process = register("worker-a")
        Process.objects.filter(pk=process.pk).update(last_heartbeat_at=fake_now - timedelta(1))
        heartbeat("default", process.pk)
        process.refresh_from_db()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET timestamp = DEFAULT")

    assert process.last_heartbeat_at == fake_now


@pytest.mark.skipif(
    connection.vendor != "mysql", reason="MariaDB/MySQL only: its session time zone shifts NOW()"
)
def test_heartbeat_is_stored_in_utc_whatever_the_session_time_zone():
    with connection.cursor() as cursor:
        cursor.execute("SET time_zone = '+05:00'")
    try:
        process = register("worker-a")
        python_now = timezone.now()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET time_zone = DEFAULT")

    assert abs(python_now - process.last_heartbeat_at) < timedelta(hours=1)


def test_heartbeat_stamps_a_fresh_time_and_returns_true():
    process = register("worker-a")
    old = datetime(2020, 1, 1, tzinfo=UTC)
    Process.objects.filter(pk=process.pk).update(last_heartbeat_at=old)

    assert heartbeat("default", process.pk) is True

    stamped = Process.objects.get(pk=process.pk).last_heartbeat_at
    assert old < stamped <= database_now()


def test_heartbeat_returns_false_when_the_row_is_gone():
    process = register("worker-a")
    other = register("worker-b")
    Process.objects.filter(pk=process.pk).delete()

    assert heartbeat("default", process.pk) is False

    assert list(Process.objects.values_list("pk", flat=True)) == [other.pk]


# -- deregister ------------------------------------------------------------------


def test_deregister_fails_the_claimed_jobs_with_process_exit_error():
    process = register("worker-a")
    claimed = claim_new_jobs(process, 2)

    assert deregister_process("default", process.pk) == 2

    for job_id in claimed:
        failure = FailedExecution.objects.get(job_id=job_id)
        assert failure.exception_class == EXIT_ERROR
        assert "stopped before the job finished" in failure.message
        assert Job.objects.get(pk=job_id).errors[-1]["exception_class_path"] == EXIT_ERROR
    assert assert_invariants() == {"failed": 2}


def test_deregister_deletes_the_process_row():
    process = register("worker-a")
    claim_new_jobs(process, 1)

    deregister_process("default", process.pk)

    assert not Process.objects.filter(pk=process.pk).exists()
    assert not ClaimedExecution.objects.exists()


def test_deregister_without_claims_fails_nothing():
    process = register("worker-a")
    ready = add.enqueue(1, 2).id

    assert deregister_process("default", process.pk) == 0

    assert not Process.objects.exists()
    assert state_of(ready) == "ready"
    assert_invariants()


def test_deregister_leaves_other_processes_and_their_claims_alone():
    leaving = register("worker-a")
    staying = register("worker-b")
    claim_new_jobs(leaving, 1)
    [kept] = claim_new_jobs(staying, 1)

    assert deregister_process("default", leaving.pk) == 1

    assert list(Process.objects.values_list("pk", flat=True)) == [staying.pk]
    claim = ClaimedExecution.objects.get()
    assert (str(claim.job_id), claim.process_id) == (kept, staying.pk)
    assert assert_invariants() == {"failed": 1, "claimed": 1}


def test_deregister_detaches_the_supervised_processes():
    supervisor = register_process(
        "default", kind="supervisor", name="supervisor-a", backend_alias="default"
    )
    worker = register("worker-a", supervisor_id=supervisor.pk)

    deregister_process("default", supervisor.pk)

    assert list(Process.objects.values_list("pk", "supervisor_id")) == [(worker.pk, None)]


def test_deregister_records_the_reason():
    process = register("worker-a")
    [job_id] = claim_new_jobs(process, 1)

    deregister_process("default", process.pk, reason="crashed")

    assert "crashed before the job finished" in FailedExecution.objects.get(job_id=job_id).message


# -- prune -------------------------------------------------------------------------


def test_prune_removes_only_processes_older_than_the_threshold():
    stale = register("worker-stale")
    recent = register("worker-recent")
    fresh = register("worker-fresh")
    set_heartbeat_age(stale, 3600)
    set_heartbeat_age(recent, 30)

    assert prune_dead_processes("default", alive_threshold=60) == 1

    assert set(Process.objects.values_list("pk", flat=True)) == {recent.pk, fresh.pk}
    assert not Process.objects.filter(pk=stale.pk).exists()


def test_prune_with_a_shorter_threshold_prunes_more():
    process = register("worker-a")
    set_heartbeat_age(process, 30)

    assert prune_dead_processes("default", alive_threshold=60) == 0
    assert prune_dead_processes("default", alive_threshold=10) == 1

    assert not Process.objects.exists()


def test_prune_fails_the_claims_with_process_pruned_error():
    stale = register("worker-stale")
    fresh = register("worker-fresh")
    pruned_jobs = claim_new_jobs(stale, 2)
    [kept] = claim_new_jobs(fresh, 1)
    set_heartbeat_age(stale, 3600)

    prune_dead_processes("default", alive_threshold=60)

    for job_id in pruned_jobs:
        failure = FailedExecution.objects.get(job_id=job_id)
        assert failure.exception_class == PRUNED_ERROR
        assert Job.objects.get(pk=job_id).errors[-1]["exception_class_path"] == PRUNED_ERROR
    assert ClaimedExecution.objects.get().job_id == Job.objects.get(pk=kept).pk
    assert assert_invariants() == {"failed": 2, "claimed": 1}


def test_prune_respects_exclude_id():
    excluded = register("worker-self")
    other = register("worker-other")
    claim_new_jobs(excluded, 1)
    set_heartbeat_age(excluded, 3600)
    set_heartbeat_age(other, 3600)

    assert prune_dead_processes("default", alive_threshold=60, exclude_id=excluded.pk) == 1

    assert list(Process.objects.values_list("pk", flat=True)) == [excluded.pk]
    assert ClaimedExecution.objects.get().process_id == excluded.pk
    assert assert_invariants() == {"claimed": 1}


def test_prune_with_no_stale_process_returns_zero():
    register("worker-a")

    assert prune_dead_processes("default", alive_threshold=60) == 0

    assert Process.objects.count() == 1
