"""``promote_due_jobs``: scheduled jobs whose time has come become ready."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from dj_queue.ids import new_job_id
from dj_queue.models import ReadyExecution, ScheduledExecution
from dj_queue.operations.jobs import NewJob, enqueue_jobs
from dj_queue.operations.scheduling import promote_due_jobs
from tests.invariants import assert_invariants, state_of

pytestmark = pytest.mark.django_db


def schedule(
    run_after: datetime, *, queue: str = "default", priority: int = 0, enqueued_at=None
) -> str:
    """Write a job due at ``run_after``, enqueued (by default) an hour before it."""
    new = NewJob(
        id=new_job_id(),
        backend_alias="default",
        task_path="tests.taskapp.tasks.add",
        queue_name=queue,
        priority=priority,
        args=[1, 2],
        kwargs={},
        run_after=run_after,
    )
    enqueue_jobs("default", [new], enqueued_at or run_after - timedelta(hours=1))
    assert state_of(new.id) == "scheduled"
    return str(new.id)


def past(minutes: int = 1) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


def future(minutes: int = 60) -> datetime:
    return timezone.now() + timedelta(minutes=minutes)


def ready_ids() -> set[str]:
    return {str(job_id) for job_id in ReadyExecution.objects.values_list("job_id", flat=True)}


def test_promote_moves_due_jobs_to_ready():
    due = {schedule(past(5)), schedule(past(1))}

    assert promote_due_jobs("default", batch_size=10) == 2

    assert ready_ids() == due
    assert not ScheduledExecution.objects.exists()
    assert assert_invariants() == {"ready": 2}


def test_promote_leaves_future_jobs_scheduled():
    due = schedule(past())
    later = {schedule(future(1)), schedule(future(60))}

    assert promote_due_jobs("default", batch_size=10) == 1

    assert ready_ids() == {due}
    assert {str(i) for i in ScheduledExecution.objects.values_list("job_id", flat=True)} == later
    assert assert_invariants() == {"ready": 1, "scheduled": 2}


def test_promote_with_nothing_due_returns_zero():
    schedule(future())

    assert promote_due_jobs("default", batch_size=10) == 0

    assert assert_invariants() == {"scheduled": 1}


def test_promote_moves_at_most_batch_size_per_call():
    for minutes in range(5, 0, -1):
        schedule(past(minutes))

    counts = [promote_due_jobs("default", batch_size=2) for _ in range(4)]

    assert counts == [2, 2, 1, 0]
    assert ReadyExecution.objects.count() == 5
    assert assert_invariants() == {"ready": 5}


def test_promote_takes_the_earliest_due_jobs_first():
    latest = schedule(past(1))
    earliest = schedule(past(30))
    middle = schedule(past(10))

    promoted = []
    for _ in range(3):
        before = ready_ids()
        assert promote_due_jobs("default", batch_size=1) == 1
        promoted.extend(ready_ids() - before)

    assert promoted == [earliest, middle, latest]
    assert_invariants()


def test_promote_keeps_queue_and_priority():
    job_id = schedule(past(), queue="reports", priority=-7)

    promote_due_jobs("default", batch_size=10)

    ready = ReadyExecution.objects.get()
    assert str(ready.job_id) == job_id
    assert (ready.queue_name, ready.priority) == ("reports", -7)
    assert assert_invariants() == {"ready": 1}
