"""Cancelling jobs: each waiting state, running jobs (asked to stop), finished
and unknown ids, through ``dj_queue.api`` and the admin."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.urls import reverse
from django.utils import timezone

from dj_queue.api import cancel_job, cancel_jobs, cancel_requested
from dj_queue.models import ClaimedExecution, Semaphore
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import complete_job
from dj_queue.operations.processes import deregister_process, register_process
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, long_running, sync_account

CANCELLED = "dj_queue.exceptions.JobCancelledError"

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(db):
    return register_process("default", kind="worker", name="w", backend_alias="default")


def claim(worker):
    return claim_jobs("default", process_id=worker.pk, worker_id="w", selectors=("*",), limit=10)


def assert_cancelled(result, attempts=0):
    fresh = result.task.get_backend().get_result(result.id)
    assert fresh.status == TaskResultStatus.FAILED
    assert fresh.errors[-1].exception_class_path == CANCELLED
    assert fresh.attempts == attempts
    assert state_of(result.id) == "failed"


def test_a_ready_job_is_cancelled_at_once():
    result = add.enqueue(1, 2)
    assert cancel_job(result.id) is True
    assert_cancelled(result)
    assert "before it ran" in result.task.get_backend().get_result(result.id).errors[-1].traceback
    assert cancel_job(result.id) is False  # twice is harmless
    assert_invariants()


def test_a_scheduled_job_is_cancelled_and_never_runs():
    result = add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)
    assert state_of(result.id) == "scheduled"
    assert cancel_job(result.id) is True
    assert_cancelled(result)
    assert_invariants()


def test_cancelling_a_blocked_job_leaves_the_holder_and_the_holder_hands_its_slot_on(worker):
    holder = sync_account.enqueue(7)
    blocked = sync_account.enqueue(7, "second")
    waiting = sync_account.enqueue(7, "third")
    assert [state_of(r.id) for r in (holder, blocked, waiting)] == ["ready", "blocked", "blocked"]

    assert cancel_job(blocked.id) is True
    assert_cancelled(blocked)
    assert state_of(holder.id) == "ready"
    assert state_of(waiting.id) == "blocked"

    # Cancelling the ready holder gives its slot to the next blocked job.
    assert cancel_job(holder.id) is True
    assert_cancelled(holder)
    assert state_of(waiting.id) == "ready"
    assert Semaphore.objects.get(key="account:7").value == 0
    assert_invariants()


def test_a_running_job_is_asked_to_stop_and_a_dead_worker_s_claim_ends_cancelled(worker):
    result = long_running.enqueue(30)  # max_attempts 3: a cancel is never retried
    (job,) = claim(worker)

    assert cancel_job(result.id) is True
    assert cancel_job(result.id) is True  # still asked, still harmless
    assert state_of(result.id) == "claimed"
    assert cancel_requested(result.id)
    assert ClaimedExecution.objects.get(job_id=job.id).cancel_requested_at is not None

    deregister_process("default", worker.pk, reason="was killed by SIGKILL")
    assert_cancelled(result, attempts=1)
    assert "while it ran" in result.task.get_backend().get_result(result.id).errors[-1].traceback
    assert_invariants()


def test_a_running_job_that_finishes_first_keeps_its_outcome(worker):
    result = add.enqueue(2, 2)
    (job,) = claim(worker)
    assert cancel_job(result.id) is True
    assert complete_job("default", job.id, worker.pk, 4, preserve=True)
    fresh = add.get_backend().get_result(result.id)
    assert (fresh.status, fresh.return_value) == (TaskResultStatus.SUCCESSFUL, 4)
    assert cancel_job(result.id) is False


def test_finished_unknown_and_malformed_ids():
    done = add.enqueue(1, 1)
    cancel_job(done.id)
    assert cancel_job(done.id) is False
    with pytest.raises(TaskResultDoesNotExist):
        cancel_job(str(uuid.uuid4()))
    with pytest.raises(TaskResultDoesNotExist):
        cancel_job("not an id")
    assert cancel_requested("not an id") is False


def test_cancel_jobs_counts_what_it_cancelled_or_asked(worker):
    running = long_running.enqueue(30)
    claim(worker)
    waiting = [add.enqueue(i, i) for i in range(3)]
    finished = add.enqueue(9, 9)
    cancel_job(finished.id)
    ids = [running.id, *(r.id for r in waiting), finished.id, str(uuid.uuid4()), "junk"]
    assert cancel_jobs(ids) == 4
    for result in waiting:
        assert_cancelled(result)
    assert state_of(running.id) == "claimed"
    assert_invariants()


def test_the_admin_cancels_selected_jobs_with_the_change_permission(admin_client, worker):
    waiting = add.enqueue(1, 2)
    done = add.enqueue(3, 4)
    cancel_job(done.id)
    response = admin_client.post(
        reverse("admin:dj_queue_job_changelist"),
        {"action": "cancel", "_selected_action": [waiting.id, done.id]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Cancelled 1 job" in response.content.decode()
    assert_cancelled(waiting)
