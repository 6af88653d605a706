"""Job transitions: enqueue, complete, fail, retry and discard."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from dj_queue.exceptions import JobStateError
from dj_queue.models import (
    ClaimedExecution,
    FailedExecution,
    Job,
    ReadyExecution,
    ScheduledExecution,
)
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import (
    JobError,
    complete_job,
    discard_failed_job,
    discard_failed_jobs,
    discard_waiting_jobs,
    fail_job,
    retry_failed_job,
    retry_failed_jobs,
)
from dj_queue.operations.processes import register_process
from tests.invariants import assert_invariants, job_states, state_of
from tests.taskapp.tasks import add, send_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_process(db):
    return register_process("default", kind="worker", name="other-worker", backend_alias="default")


def raised(exc: BaseException) -> JobError:
    """The JobError of ``exc`` once raised, so it has a traceback."""
    try:
        raise exc
    except BaseException as caught:
        return JobError.from_exception(caught)


def claimed_job(process) -> uuid.UUID:
    job_id = uuid.UUID(add.enqueue(1, 2).id)
    [job] = claim_jobs(
        "default", process_id=process.id, worker_id="worker-1", selectors=["*"], limit=1
    )
    assert job.id == job_id
    return job_id


def failed_job(process, message: str = "boom") -> uuid.UUID:
    job_id = claimed_job(process)
    assert fail_job("default", job_id, process.id, raised(ValueError(message)))
    return job_id


def snapshot() -> tuple[dict[str, list[str]], list[dict]]:
    """Every job's state rows and columns, to compare before and after."""
    return job_states(), list(Job.objects.order_by("pk").values())


# -- enqueue ---------------------------------------------------------------


def test_enqueue_writes_one_job_and_one_ready_row(backend):
    result = add.enqueue(1, 2)

    job = Job.objects.get()
    assert str(job.id) == result.id
    assert (job.task_path, job.args, job.kwargs) == ("tests.taskapp.tasks.add", [1, 2], {})
    assert (job.queue_name, job.priority, job.backend_alias) == ("default", 0, backend.alias)
    assert job.finished_at is None
    assert (job.worker_ids, job.errors) == ([], [])
    ready = ReadyExecution.objects.get()
    assert (ready.job_id, ready.queue_name, ready.priority) == (job.id, "default", 0)
    assert assert_invariants() == {"ready": 1}


def test_enqueue_copies_queue_and_priority_to_the_ready_row():
    send_email.enqueue("a@example.com")

    ready = ReadyExecution.objects.get()
    assert (ready.queue_name, ready.priority) == ("email", 10)
    assert assert_invariants() == {"ready": 1}


def test_enqueue_with_a_future_run_after_writes_a_scheduled_row():
    run_after = timezone.now() + timedelta(hours=1)

    result = add.using(run_after=run_after, priority=3, queue_name="later").enqueue(1, 2)

    scheduled = ScheduledExecution.objects.get()
    assert str(scheduled.job_id) == result.id
    assert scheduled.scheduled_at == run_after
    assert (scheduled.queue_name, scheduled.priority) == ("later", 3)
    assert not ReadyExecution.objects.exists()
    assert assert_invariants() == {"scheduled": 1}


def test_enqueue_with_a_past_run_after_writes_a_ready_row():
    add.using(run_after=timezone.now() - timedelta(seconds=1)).enqueue(1, 2)

    assert assert_invariants() == {"ready": 1}


# -- complete ----------------------------------------------------------------


def test_complete_job_records_the_return_value(worker_process):
    job_id = claimed_job(worker_process)

    assert complete_job("default", job_id, worker_process.id, {"sum": 3}, preserve=True)

    job = Job.objects.get(pk=job_id)
    assert job.return_value == {"sum": 3}
    assert job.finished_at is not None
    assert assert_invariants() == {"finished": 1}


def test_complete_job_without_preserve_deletes_the_job(worker_process):
    job_id = claimed_job(worker_process)

    assert complete_job("default", job_id, worker_process.id, 3, preserve=False)

    assert not Job.objects.filter(pk=job_id).exists()
    assert not ClaimedExecution.objects.exists()
    assert_invariants()


def test_complete_job_of_another_process_claim_changes_nothing(worker_process, other_process):
    job_id = claimed_job(worker_process)
    before = snapshot()

    assert not complete_job("default", job_id, other_process.id, 3, preserve=True)

    assert snapshot() == before
    assert ClaimedExecution.objects.get().process_id == worker_process.id
    assert_invariants()


def test_complete_job_without_preserve_of_another_process_claim_keeps_the_job(
    worker_process, other_process
):
    job_id = claimed_job(worker_process)

    assert not complete_job("default", job_id, other_process.id, 3, preserve=False)

    assert state_of(job_id) == "claimed"
    assert_invariants()


def test_complete_job_after_the_claim_is_gone_changes_nothing(worker_process):
    job_id = claimed_job(worker_process)
    assert complete_job("default", job_id, worker_process.id, 3, preserve=True)
    before = snapshot()

    assert not complete_job("default", job_id, worker_process.id, 4, preserve=True)
    assert not complete_job("default", job_id, worker_process.id, 4, preserve=False)

    assert snapshot() == before
    assert Job.objects.get(pk=job_id).return_value == 3
    assert_invariants()


def test_complete_job_of_an_unclaimed_job_changes_nothing(worker_process):
    job_id = uuid.UUID(add.enqueue(1, 2).id)
    before = snapshot()

    assert not complete_job("default", job_id, worker_process.id, 3, preserve=True)

    assert snapshot() == before
    assert state_of(job_id) == "ready"


# -- fail --------------------------------------------------------------------


def test_fail_job_keeps_the_exception_in_the_failed_execution(worker_process):
    job_id = claimed_job(worker_process)
    error = raised(ValueError("it broke"))

    assert fail_job("default", job_id, worker_process.id, error)

    failure = FailedExecution.objects.get(job_id=job_id)
    assert failure.exception_class == "builtins.ValueError"
    assert failure.message == "it broke"
    assert failure.traceback.startswith("Traceback (most recent call last):")
    assert failure.traceback.rstrip().endswith("ValueError: it broke")
    assert failure.traceback == error.traceback
    assert Job.objects.get(pk=job_id).finished_at is not None
    assert assert_invariants() == {"failed": 1}


def test_fail_job_appends_to_the_job_errors(worker_process):
    job_id = claimed_job(worker_process)
    error = raised(ValueError("it broke"))

    fail_job("default", job_id, worker_process.id, error)

    assert Job.objects.get(pk=job_id).errors == [
        {"exception_class_path": "builtins.ValueError", "traceback": error.traceback}
    ]


def test_fail_job_keeps_the_errors_of_earlier_attempts(worker_process):
    job_id = failed_job(worker_process, "first")
    retry_failed_job(job_id)
    claim_jobs(
        "default", process_id=worker_process.id, worker_id="worker-2", selectors=["*"], limit=1
    )
    second = raised(KeyError("second"))

    assert fail_job("default", job_id, worker_process.id, second)

    errors = Job.objects.get(pk=job_id).errors
    assert [e["exception_class_path"] for e in errors] == [
        "builtins.ValueError",
        "builtins.KeyError",
    ]
    assert "ValueError: first" in errors[0]["traceback"]
    assert errors[1]["traceback"] == second.traceback
    assert FailedExecution.objects.get(job_id=job_id).exception_class == "builtins.KeyError"
    assert assert_invariants() == {"failed": 1}


def test_fail_job_of_another_process_claim_changes_nothing(worker_process, other_process):
    job_id = claimed_job(worker_process)
    before = snapshot()

    assert not fail_job("default", job_id, other_process.id, raised(ValueError("x")))

    assert snapshot() == before
    assert not FailedExecution.objects.exists()
    assert ClaimedExecution.objects.get().process_id == worker_process.id
    assert_invariants()


def test_fail_job_after_the_claim_is_gone_changes_nothing(worker_process):
    job_id = claimed_job(worker_process)
    assert complete_job("default", job_id, worker_process.id, 3, preserve=True)
    before = snapshot()

    assert not fail_job("default", job_id, worker_process.id, raised(ValueError("late")))

    assert snapshot() == before
    assert not FailedExecution.objects.exists()
    assert assert_invariants() == {"finished": 1}


def test_fail_job_twice_records_one_failure(worker_process):
    job_id = failed_job(worker_process, "first")
    before = snapshot()

    assert not fail_job("default", job_id, worker_process.id, raised(ValueError("second")))

    assert snapshot() == before
    assert FailedExecution.objects.get().message == "first"


# -- retry and discard -------------------------------------------------------

ID_TYPES = pytest.mark.parametrize("as_type", [lambda job_id: job_id, str], ids=["uuid", "str"])


@ID_TYPES
def test_retry_failed_job_moves_it_to_ready(worker_process, as_type):
    job_id = failed_job(worker_process)
    errors = Job.objects.get(pk=job_id).errors

    retry_failed_job(as_type(job_id))

    assert state_of(job_id) == "ready"
    stored = Job.objects.get(pk=job_id)
    assert stored.finished_at is None
    assert stored.errors == errors
    assert not FailedExecution.objects.exists()
    assert assert_invariants() == {"ready": 1}


def test_retry_failed_job_keeps_queue_and_priority():
    result = send_email.enqueue("a@example.com")
    process = register_process("default", kind="worker", name="w", backend_alias="default")
    claim_jobs("default", process_id=process.id, worker_id="w", selectors=["*"], limit=1)
    fail_job("default", uuid.UUID(result.id), process.id, raised(ValueError("x")))

    retry_failed_job(result.id)

    ready = ReadyExecution.objects.get()
    assert (ready.queue_name, ready.priority) == ("email", 10)
    assert_invariants()


@ID_TYPES
def test_discard_failed_job_deletes_the_job(worker_process, as_type):
    job_id = failed_job(worker_process)
    kept = uuid.UUID(add.enqueue(3, 4).id)

    assert discard_failed_job(as_type(job_id)) is None

    assert not Job.objects.filter(pk=job_id).exists()
    assert not FailedExecution.objects.exists()
    assert state_of(kept) == "ready"
    assert assert_invariants() == {"ready": 1}


def ready_job(process) -> uuid.UUID:
    return uuid.UUID(add.enqueue(1, 2).id)


def scheduled_job(process) -> uuid.UUID:
    return uuid.UUID(add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2).id)


def finished_job(process) -> uuid.UUID:
    job_id = claimed_job(process)
    assert complete_job("default", job_id, process.id, 3, preserve=True)
    return job_id


OPERATIONS = pytest.mark.parametrize(
    "operation", [retry_failed_job, discard_failed_job], ids=["retry", "discard"]
)


@OPERATIONS
@pytest.mark.parametrize(
    "make_job",
    [ready_job, scheduled_job, claimed_job, finished_job],
    ids=["ready", "scheduled", "claimed", "finished"],
)
def test_retry_and_discard_refuse_a_job_that_is_not_failed(worker_process, operation, make_job):
    failed_job(worker_process)  # another job, which must stay failed
    job_id = make_job(worker_process)
    before = snapshot()

    with pytest.raises(JobStateError, match="is not failed"):
        operation(job_id)

    assert snapshot() == before
    assert_invariants()


@OPERATIONS
def test_retry_and_discard_refuse_an_unknown_job(worker_process, operation):
    failed_job(worker_process)
    before = snapshot()

    with pytest.raises(JobStateError, match="does not exist"):
        operation(str(uuid.uuid4()))

    assert snapshot() == before


@OPERATIONS
@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "", "1234", 42, None, b"x" * 16, "0" * 100], ids=repr
)
def test_retry_and_discard_refuse_a_malformed_id(worker_process, operation, bad_id):
    failed_job(worker_process)
    before = snapshot()

    with pytest.raises(JobStateError):
        operation(bad_id)

    assert snapshot() == before


# -- bulk forms ----------------------------------------------------------------------


def test_retry_failed_jobs_retries_the_failed_ones_and_skips_the_rest(worker_process):
    failed = [failed_job(worker_process, f"boom {i}") for i in range(5)]
    waiting = uuid.UUID(add.enqueue(1, 1).id)

    retried = retry_failed_jobs([*failed, str(waiting), uuid.uuid4()], batch_size=2)

    assert retried == 5
    assert {state_of(job_id) for job_id in failed} == {"ready"}
    assert state_of(waiting) == "ready"
    assert all(len(Job.objects.get(pk=job_id).errors) == 1 for job_id in failed)
    assert assert_invariants() == {"ready": 6}


def test_discard_failed_jobs_deletes_only_failed_ones(worker_process):
    failed = [failed_job(worker_process) for _ in range(3)]
    running = claimed_job(worker_process)

    assert discard_failed_jobs([*failed, running], batch_size=2) == 3

    assert {state_of(job_id) for job_id in failed} == {"missing"}
    assert state_of(running) == "claimed"
    assert_invariants()


def test_discard_waiting_jobs_deletes_ready_and_scheduled_only(worker_process):
    running = claimed_job(worker_process)
    failed = failed_job(worker_process)
    ready = uuid.UUID(add.enqueue(1, 1).id)
    scheduled = uuid.UUID(add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1).id)

    assert discard_waiting_jobs([running, failed, ready, scheduled]) == 2

    assert state_of(ready) == state_of(scheduled) == "missing"
    assert state_of(running) == "claimed"
    assert state_of(failed) == "failed"
    assert_invariants()


@pytest.mark.parametrize("operation", ["retry", "discard", "discard_waiting"])
def test_bulk_forms_refuse_a_malformed_id_before_changing_anything(worker_process, operation):
    failed = failed_job(worker_process)
    before = snapshot()
    bulk = {
        "retry": retry_failed_jobs,
        "discard": discard_failed_jobs,
        "discard_waiting": discard_waiting_jobs,
    }[operation]

    with pytest.raises(JobStateError, match="not a dj_queue job id"):
        bulk([failed, "not-an-id"])

    assert snapshot() == before
