"""``OutcomeRecorder``: outcomes handed over by worker threads, recorded in one
batch with the next claim, reported once committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from django.db import connections
from django.tasks import TaskResultStatus, default_task_backend
from django.tasks.signals import task_finished

from dj_queue.db import get_driver
from dj_queue.models import ClaimedExecution, FailedExecution
from dj_queue.operations.claims import Claimant, claim_jobs
from dj_queue.runtime.execution import ExecutionContext, execute_job
from dj_queue.runtime.recorder import OutcomeRecorder
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, echo, fail, flaky

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def committed() -> Iterator[Callable[[str], bool]]:
    """Whether a job is finished as a second connection to the test database
    sees it: only what was committed."""
    wrapper = connections["default"]
    raw = wrapper.get_new_connection(wrapper.get_connection_params())
    driver = get_driver("default")
    placeholder = "?" if wrapper.vendor == "sqlite" else "%s"
    sql = (
        f"SELECT 1 FROM {driver.job_table} WHERE {wrapper.ops.quote_name('id')} = "
        f"{placeholder} AND {wrapper.ops.quote_name('finished_at')} IS NOT NULL"
    )

    def finished(job_id: str) -> bool:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, [driver.job_id_param(uuid.UUID(job_id))])
            return cursor.fetchone() is not None
        finally:
            cursor.close()
            raw.commit()  # a fresh snapshot for the next look

    yield finished
    raw.close()


def recorder_for(process, wakes: list[int] | None = None) -> OutcomeRecorder:
    claimant = Claimant(process_id=process.id, worker_id="worker-1", selectors=("*",))
    return OutcomeRecorder(
        "default",
        claimant,
        preserve=True,
        on_first=lambda: wakes.append(1) if wakes is not None else None,
    )


def run_all(process, recorder: OutcomeRecorder) -> None:
    context = ExecutionContext(
        alias="default",
        process_id=process.id,
        preserve_finished_jobs=True,
        stopping=lambda: False,
        hand_over=recorder.hand_over,
    )
    jobs = claim_jobs(
        "default", process_id=process.id, worker_id="worker-1", selectors=["*"], limit=100
    )
    for job in jobs:
        assert execute_job(job, context) is None


def test_outcomes_wait_for_the_flush_and_task_finished_follows_the_commit(
    worker_process, committed
):
    results = [add.enqueue(n, n) for n in range(3)] + [fail.enqueue("no")]
    committed_when_sent = {}

    def receiver(sender, task_result, **kwargs):
        committed_when_sent[task_result.id] = committed(task_result.id)

    wakes: list[int] = []
    recorder = recorder_for(worker_process, wakes)
    task_finished.connect(receiver)
    try:
        run_all(worker_process, recorder)
        assert recorder.pending == 4
        assert wakes == [1]  # once, for the first outcome of the batch
        assert committed_when_sent == {}
        assert ClaimedExecution.objects.count() == 4
        recorder.flush()
    finally:
        task_finished.disconnect(receiver)

    assert committed_when_sent == {result.id: True for result in results}
    statuses = [default_task_backend.get_result(r.id).status for r in results]
    assert statuses == [TaskResultStatus.SUCCESSFUL] * 3 + [TaskResultStatus.FAILED]
    assert default_task_backend.get_result(results[1].id).return_value == 2
    assert recorder.pending == 0
    assert assert_invariants() == {"finished": 3, "failed": 1}


def test_a_retried_failure_sends_no_task_finished(worker_process):
    result = flaky.enqueue(1)
    sent = []
    receiver = lambda sender, task_result, **kwargs: sent.append(task_result.id)  # noqa: E731
    recorder = recorder_for(worker_process)
    task_finished.connect(receiver)
    try:
        run_all(worker_process, recorder)
        recorder.flush()
    finally:
        task_finished.disconnect(receiver)

    assert sent == []
    assert state_of(result.id) == "scheduled"


def test_the_flush_claims_the_next_jobs(worker_process):
    add.enqueue(1, 1)
    recorder = recorder_for(worker_process)
    run_all(worker_process, recorder)
    waiting = [add.enqueue(2, n).id for n in range(3)]

    claimed = recorder.flush(claim=2)

    assert [str(job.id) for job in claimed] == waiting[:2]
    assert state_of(waiting[2]) == "ready"


@pytest.fixture
def refusing_database() -> Iterator[str]:
    """The job table refuses return values holding a marker (a real constraint
    error from the database); yields the marker."""
    marker = "bad-value-7f3"
    connection = connections["default"]
    table = get_driver("default").job_table
    column = connection.ops.quote_name("return_value")
    add, drop = {
        "postgresql": (
            f"ALTER TABLE {table} ADD CONSTRAINT dj_queue_test_refuse "
            f"CHECK (position('{marker}' in {column}::text) = 0)",
            f"ALTER TABLE {table} DROP CONSTRAINT dj_queue_test_refuse",
        ),
        "mysql": (
            f"ALTER TABLE {table} ADD CONSTRAINT dj_queue_test_refuse "
            f"CHECK (LOCATE('{marker}', {column}) = 0)",
            f"ALTER TABLE {table} DROP CONSTRAINT dj_queue_test_refuse",
        ),
        "sqlite": (
            f"CREATE TRIGGER dj_queue_test_refuse BEFORE UPDATE ON {table} "
            f"WHEN instr(NEW.{column}, '{marker}') > 0 "
            f"BEGIN SELECT RAISE(ABORT, 'value not accepted'); END",
            "DROP TRIGGER dj_queue_test_refuse",
        ),
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(add)
    yield marker
    with connection.cursor() as cursor:
        cursor.execute(drop)


def test_a_value_the_database_refuses_fails_only_its_own_job(worker_process, refusing_database):
    """A refused batch is recorded again one outcome at a time, so that only
    the job at fault fails."""
    good = add.enqueue(1, 1)
    bad = echo.enqueue(refusing_database)
    recorder = recorder_for(worker_process)
    run_all(worker_process, recorder)

    recorder.flush()

    assert default_task_backend.get_result(good.id).status == TaskResultStatus.SUCCESSFUL
    assert default_task_backend.get_result(bad.id).status == TaskResultStatus.FAILED
    assert FailedExecution.objects.get(job_id=bad.id).exception_class.startswith("django.db.")
    assert assert_invariants() == {"finished": 1, "failed": 1}
