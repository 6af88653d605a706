"""``record_outcomes``: a worker's finished jobs recorded in one batch, and
``unclaim_jobs``: a stopping worker's unstarted jobs given back."""

from __future__ import annotations

import pytest
from django.tasks import TaskResultStatus, default_task_backend

from dj_queue.concurrency import ConcurrencyLimit
from dj_queue.models import ClaimedExecution, FailedExecution, Job, ReadyExecution, Semaphore
from dj_queue.operations.claims import Claimant, claim_jobs, unclaim_jobs
from dj_queue.operations.jobs import FailOutcome, JobError
from dj_queue.operations.outcomes import Failure, Success, record_outcomes
from dj_queue.operations.processes import register_process
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, flaky, sync_account

pytestmark = pytest.mark.django_db


def claimant_of(process, selectors=("*",)) -> Claimant:
    return Claimant(process_id=process.id, worker_id="worker-1", selectors=tuple(selectors))


def claim(process, limit: int = 100):
    return claim_jobs(
        "default", process_id=process.id, worker_id="worker-1", selectors=["*"], limit=limit
    )


def other_process():
    return register_process("default", kind="worker", name="other", backend_alias="default")


def test_successes_are_recorded_with_their_own_return_values(worker_process):
    ids = [add.enqueue(n, n).id for n in range(3)]
    jobs = claim(worker_process)

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process),
        [Success(job.id, {"n": index}) for index, job in enumerate(jobs)],
        preserve=True,
    )

    assert recorded.completed == {job.id for job in jobs}
    assert recorded.claimed == []
    for index, job in enumerate(jobs):
        result = default_task_backend.get_result(str(job.id))
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == {"n": index}
    assert sorted(state_of(job_id) for job_id in ids) == ["finished"] * 3
    assert assert_invariants() == {"finished": 3}


def test_one_shared_return_value_and_deleting_finished_jobs(worker_process):
    for n in range(3):
        add.enqueue(n, n)
    jobs = claim(worker_process)

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process),
        [Success(job.id, None) for job in jobs],
        preserve=False,
    )

    assert recorded.completed == {job.id for job in jobs}
    assert Job.objects.count() == 0
    assert ClaimedExecution.objects.count() == 0


def test_a_job_whose_claim_was_taken_back_is_left_alone_and_the_rest_recorded(worker_process):
    for n in range(3):
        add.enqueue(n, n)
    kept, lost, gone = claim(worker_process)
    # Recovered and claimed again by another process meanwhile; the third's
    # claim is gone altogether.
    other = other_process()
    ClaimedExecution.objects.filter(job_id=lost.id).update(process_id=other.id)
    ClaimedExecution.objects.filter(job_id=gone.id).delete()

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process),
        [Success(job.id, 1) for job in (kept, lost, gone)],
        preserve=True,
    )

    assert recorded.completed == {kept.id}
    assert state_of(str(kept.id)) == "finished"
    assert state_of(str(lost.id)) == "claimed"
    assert ClaimedExecution.objects.get(job_id=lost.id).process_id == other.id
    assert Job.objects.get(pk=lost.id).finished_at is None
    assert Job.objects.get(pk=gone.id).finished_at is None


def test_failures_are_retried_or_failed_by_their_policy_in_the_same_batch(worker_process):
    retried = flaky.enqueue(1)
    failed = add.enqueue(1, 2)
    succeeded = add.enqueue(3, 4)
    jobs = {str(job.id): job for job in claim(worker_process)}
    error = JobError.from_exception(ValueError("no"))

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process),
        [Success(jobs[succeeded.id].id, 7)],
        [Failure(jobs[retried.id].id, error), Failure(jobs[failed.id].id, error)],
        preserve=True,
    )

    assert recorded.completed == {jobs[succeeded.id].id}
    assert recorded.failed == {
        jobs[retried.id].id: FailOutcome.RETRYING,
        jobs[failed.id].id: FailOutcome.FAILED,
    }
    assert state_of(retried.id) == "scheduled"
    assert state_of(failed.id) == "failed"
    assert FailedExecution.objects.get(job_id=failed.id).exception_class == "builtins.ValueError"
    assert state_of(succeeded.id) == "finished"
    assert_invariants()


def test_limited_jobs_hand_their_slots_on_before_the_claim_of_the_next(worker_process):
    first = sync_account.enqueue(1, "a")
    second = sync_account.enqueue(1, "b")
    [job] = claim(worker_process)
    assert str(job.id) == first.id and state_of(second.id) == "blocked"

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process),
        [Success(job.id, None, ConcurrencyLimit.of_job(job))],
        preserve=True,
        claim=5,
    )

    assert [str(next_job.id) for next_job in recorded.claimed] == [second.id]
    assert state_of(first.id) == "finished"
    assert state_of(second.id) == "claimed"
    assert Semaphore.objects.get(key="account:1").value == 0
    assert_invariants()


@pytest.mark.parametrize("with_outcomes", [True, False])
def test_the_next_jobs_are_claimed_in_claim_order(worker_process, with_outcomes):
    if with_outcomes:
        add.enqueue(0, 0)
    done = claim(worker_process)
    low = add.using(priority=-5).enqueue(1, 1).id
    high = add.using(priority=5).enqueue(2, 2).id
    middle = [add.enqueue(3, n).id for n in range(2)]

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process),
        [Success(job.id, None) for job in done],
        preserve=True,
        claim=3,
    )

    assert [str(job.id) for job in recorded.claimed] == [high, *middle]
    assert all(job.worker_ids == ["worker-1"] for job in recorded.claimed)
    assert state_of(low) == "ready"
    expected = {"claimed": 3, "ready": 1} | ({"finished": 1} if with_outcomes else {})
    assert assert_invariants() == expected


def test_later_selectors_fill_what_the_first_left(worker_process):
    add.enqueue(0, 0)
    [done] = claim(worker_process)
    email = add.using(queue_name="email").enqueue(1, 1).id
    other = add.using(queue_name="other").enqueue(2, 2).id

    recorded = record_outcomes(
        "default",
        claimant_of(worker_process, ["email", "*"]),
        [Success(done.id, None)],
        preserve=True,
        claim=5,
    )

    assert [str(job.id) for job in recorded.claimed] == [email, other]


def test_unstarted_jobs_go_back_to_ready_without_an_attempt(worker_process):
    first = add.enqueue(1, 1)
    retried = flaky.enqueue(1)
    jobs = {str(job.id): job for job in claim(worker_process)}
    # The second has had an attempt before this claim.
    Job.objects.filter(pk=retried.id).update(worker_ids=["earlier", "worker-1"])
    jobs[retried.id].worker_ids = ["earlier", "worker-1"]

    assert unclaim_jobs("default", worker_process.id, list(jobs.values())) == 2

    assert ReadyExecution.objects.count() == 2
    never = Job.objects.get(pk=first.id)
    assert (never.worker_ids, never.started_at, never.last_attempted_at) == ([], None, None)
    assert default_task_backend.get_result(first.id).status == TaskResultStatus.READY
    again = Job.objects.get(pk=retried.id)
    assert again.worker_ids == ["earlier"]
    assert again.started_at is not None
    assert assert_invariants() == {"ready": 2}


def test_unclaiming_leaves_claims_another_process_holds(worker_process):
    add.enqueue(1, 1)
    [job] = claim(worker_process)
    other = other_process()
    ClaimedExecution.objects.filter(job_id=job.id).update(process_id=other.id)

    assert unclaim_jobs("default", worker_process.id, [job]) == 0
    assert state_of(str(job.id)) == "claimed"
    assert Job.objects.get(pk=job.id).worker_ids == ["worker-1"]
