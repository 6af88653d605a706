"""The operator commands: dj_queue_health and dj_queue_prune."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dj_queue.models import Job
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import JobError, complete_job, fail_job
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, echo

pytestmark = pytest.mark.django_db


# -- prune -------------------------------------------------------------------------


def prune(*args: str) -> str:
    out = StringIO()
    call_command("dj_queue_prune", *args, stdout=out)
    return out.getvalue().strip()


def finished_job(process, *, task=add, failed=False, age_days=2.0) -> str:
    result = task.enqueue(1, 2)
    claim_jobs("default", process_id=process.pk, worker_id="w", selectors=["*"], limit=1)
    job_id = uuid.UUID(result.id)
    if failed:
        fail_job("default", job_id, process.pk, JobError("builtins.ValueError", "x", "tb"))
    else:
        complete_job("default", job_id, process.pk, 3, preserve=True)
    Job.objects.filter(pk=job_id).update(finished_at=timezone.now() - timedelta(days=age_days))
    return result.id


DAY = str(24 * 3600)


def test_prune_deletes_old_successful_jobs_only(worker_process):
    old = [finished_job(worker_process) for _ in range(3)]
    recent = finished_job(worker_process, age_days=0.1)
    old_failed = finished_job(worker_process, failed=True)
    ready = add.enqueue(1, 1).id
    scheduled = add.using(run_after=timezone.now() + timedelta(days=9)).enqueue(1, 1).id
    running = add.enqueue(2, 2).id
    claim_jobs("default", process_id=worker_process.pk, worker_id="w", selectors=["*"], limit=2)

    assert prune("--older-than", DAY) == f"deleted 3 successful job(s) older than {DAY}s"

    assert {state_of(job_id) for job_id in old} == {"missing"}
    assert state_of(recent) == "finished"
    assert state_of(old_failed) == "failed"
    assert state_of(scheduled) == "scheduled"
    assert {state_of(ready), state_of(running)} == {"claimed"}
    assert_invariants()


def test_prune_include_failed_deletes_failed_jobs_too(worker_process):
    failed = finished_job(worker_process, failed=True)
    succeeded = finished_job(worker_process)

    assert "deleted 2 finished job(s)" in prune("--older-than", DAY, "--include-failed")

    assert state_of(failed) == state_of(succeeded) == "missing"
    assert_invariants()


def test_prune_by_task_path(worker_process):
    of_add = finished_job(worker_process)
    of_echo = finished_job(worker_process, task=echo)

    output = prune("--older-than", DAY, "--task-path", echo.module_path)

    assert output == f"deleted 1 successful job(s) of {echo.module_path} older than {DAY}s"
    assert state_of(of_add) == "finished"
    assert state_of(of_echo) == "missing"


def test_prune_in_small_batches_deletes_everything(worker_process):
    jobs = [finished_job(worker_process) for _ in range(7)]
    prune("--older-than", DAY, "--batch-size", "2")
    assert {state_of(job_id) for job_id in jobs} == {"missing"}


def test_prune_dry_run_deletes_nothing(worker_process):
    jobs = [finished_job(worker_process) for _ in range(2)]
    assert prune("--older-than", DAY, "--dry-run") == (
        f"would delete 2 successful job(s) older than {DAY}s"
    )
    assert {state_of(job_id) for job_id in jobs} == {"finished"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--older-than"),
        (["--older-than", "0"], "--older-than takes a number above 0"),
        (["--older-than", "soon"], "--older-than takes a number above 0"),
        (["--older-than", "60", "--batch-size", "2.5"], "--batch-size takes a whole number"),
    ],
)
def test_prune_refuses_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("dj_queue_prune", *args)
