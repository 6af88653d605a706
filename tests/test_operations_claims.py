"""``claim_jobs``: which ready jobs a worker gets, in what order, and what a claim writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dj_queue.models import ClaimedExecution, Job, Pause, ReadyExecution, ScheduledExecution
from dj_queue.operations.claims import Claimant, claim_jobs, complete_and_claim_next
from dj_queue.operations.jobs import JobError, fail_job, retry_failed_job
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add

pytestmark = pytest.mark.django_db


def enqueue(queue: str = "default", priority: int = 0) -> str:
    return add.using(queue_name=queue, priority=priority).enqueue(1, 2).id


def claim(process, selectors, limit=100, worker_id="worker-1") -> list[str]:
    jobs = claim_jobs(
        "default", process_id=process.id, worker_id=worker_id, selectors=selectors, limit=limit
    )
    return [str(job.id) for job in jobs]


def queue_of(job_id: str) -> str:
    return Job.objects.get(pk=job_id).queue_name


def pause(queue: str) -> None:
    Pause.objects.create(queue_name=queue, created_at=timezone.now())


def test_claims_at_most_limit(worker_process):
    for _ in range(5):
        enqueue()

    claimed = claim(worker_process, ["*"], limit=3)

    assert len(claimed) == 3
    assert ReadyExecution.objects.count() == 2
    assert assert_invariants() == {"claimed": 3, "ready": 2}


def test_limit_below_one_claims_nothing(worker_process):
    enqueue()

    assert claim(worker_process, ["*"], limit=0) == []
    assert ReadyExecution.objects.count() == 1
    assert_invariants()


def test_selector_order_wins_over_priority(worker_process):
    default_job = enqueue("default", priority=50)
    email_job = enqueue("email", priority=-10)

    assert claim(worker_process, ["email", "default"], limit=1) == [email_job]
    assert claim(worker_process, ["email", "default"], limit=1) == [default_job]
    assert_invariants()


def test_selectors_are_served_in_order_within_one_claim(worker_process):
    default_job = enqueue("default", priority=50)
    email_jobs = [enqueue("email", priority=-10), enqueue("email", priority=-10)]

    assert claim(worker_process, ["email", "default"], limit=3) == [*email_jobs, default_job]
    assert_invariants()


def test_higher_priority_is_claimed_first_within_a_selector(worker_process):
    low = enqueue(priority=0)
    high = enqueue(priority=10)
    middle = enqueue(priority=5)
    lowest = enqueue(priority=-5)

    assert claim(worker_process, ["default"]) == [high, middle, low, lowest]
    assert_invariants()


def test_equal_priority_is_claimed_oldest_first(worker_process):
    jobs = [enqueue() for _ in range(5)]

    first = claim(worker_process, ["default"], limit=2)
    rest = claim(worker_process, ["default"], limit=10)

    assert first == jobs[:2]
    assert rest == jobs[2:]
    assert_invariants()


def test_star_orders_all_queues_by_priority_then_age(worker_process):
    old_low = enqueue("reports", priority=0)
    high = enqueue("email", priority=10)
    new_low = enqueue("default", priority=0)

    assert claim(worker_process, ["*"]) == [high, old_low, new_low]
    assert_invariants()


def test_star_matches_every_queue(worker_process):
    jobs = {enqueue(queue) for queue in ["default", "email", "reports", "EMAIL", "a_b"]}

    assert set(claim(worker_process, ["*"])) == jobs
    assert not ReadyExecution.objects.exists()
    assert_invariants()


def test_prefix_selector_matches_queues_starting_with_the_prefix(worker_process):
    ids = {queue: enqueue(queue) for queue in ["email", "email_bulk", "mail", "emai"]}

    claimed = claim(worker_process, ["email*"])

    assert sorted(queue_of(job_id) for job_id in claimed) == ["email", "email_bulk"]
    assert set(ReadyExecution.objects.values_list("job_id", flat=True)) == {
        uuid.UUID(ids["mail"]),
        uuid.UUID(ids["emai"]),
    }
    assert_invariants()


def test_prefix_selector_is_case_sensitive(worker_process):
    enqueue("EMAIL")
    enqueue("Email_bulk")

    assert claim(worker_process, ["email*"]) == []
    assert ReadyExecution.objects.count() == 2


def test_exact_selector_is_case_sensitive(worker_process):
    upper = enqueue("EMAIL")
    lower = enqueue("email")

    assert claim(worker_process, ["email"]) == [lower]
    assert claim(worker_process, ["EMAIL"]) == [upper]


@pytest.mark.parametrize(
    ("selector", "literal_queue", "wildcard_match"),
    [("a_*", "a_b", "axb"), ("a%*", "a%b", "axb"), ("a!_*", "a!_b", "a!xb")],
)
def test_prefix_wildcard_characters_match_literally(
    worker_process, selector, literal_queue, wildcard_match
):
    literal = enqueue(literal_queue)
    enqueue(wildcard_match)

    assert claim(worker_process, [selector]) == [literal]
    assert ReadyExecution.objects.get().queue_name == wildcard_match
    assert_invariants()


def test_overlapping_selectors_never_claim_a_job_twice(worker_process):
    email_jobs = [enqueue("email") for _ in range(3)]
    other_jobs = [enqueue("default") for _ in range(3)]

    claimed = claim(worker_process, ["email", "*"], limit=10)

    assert claimed == email_jobs + other_jobs
    assert ClaimedExecution.objects.count() == 6
    assert assert_invariants() == {"claimed": 6}


def test_overlapping_prefix_and_exact_selectors_never_claim_a_job_twice(worker_process):
    jobs = [enqueue("email"), enqueue("email_bulk"), enqueue("email")]

    claimed = claim(worker_process, ["email*", "email", "*"], limit=10)

    assert sorted(claimed) == sorted(jobs)
    assert ClaimedExecution.objects.count() == 3
    assert_invariants()


def test_paused_queue_is_skipped_by_an_exact_selector(worker_process):
    pause("email")
    paused_job = enqueue("email", priority=100)
    default_job = enqueue("default")

    assert claim(worker_process, ["email", "default"]) == [default_job]
    assert list(ReadyExecution.objects.values_list("job_id", flat=True)) == [uuid.UUID(paused_job)]
    assert_invariants()


def test_paused_queue_is_skipped_by_star(worker_process):
    pause("email")
    enqueue("email", priority=100)
    others = {enqueue("default"), enqueue("reports")}

    assert set(claim(worker_process, ["*"])) == others
    assert ReadyExecution.objects.get().queue_name == "email"
    assert_invariants()


def test_paused_queue_is_skipped_by_a_prefix_selector(worker_process):
    pause("email")
    enqueue("email")
    bulk = enqueue("email_bulk")

    assert claim(worker_process, ["email*"]) == [bulk]
    assert_invariants()


def test_claim_writes_a_claimed_execution_for_the_process(worker_process):
    ids = [enqueue(), enqueue()]

    claim(worker_process, ["default"])

    claims = ClaimedExecution.objects.order_by("job_id")
    assert sorted(str(c.job_id) for c in claims) == sorted(ids)
    assert {c.process_id for c in claims} == {worker_process.id}
    assert not ReadyExecution.objects.exists()
    assert assert_invariants() == {"claimed": 2}


def test_claim_stamps_the_attempt_on_the_job(worker_process):
    job_id = enqueue()

    [returned] = claim_jobs(
        "default", process_id=worker_process.id, worker_id="worker-1", selectors=["*"], limit=1
    )

    stored = Job.objects.get(pk=job_id)
    assert stored.started_at is not None
    assert stored.last_attempted_at == stored.started_at
    assert stored.worker_ids == ["worker-1"]
    assert (returned.started_at, returned.last_attempted_at, returned.worker_ids) == (
        stored.started_at,
        stored.last_attempted_at,
        stored.worker_ids,
    )
    assert_invariants()


def test_second_attempt_keeps_started_at_and_appends_the_worker_id(worker_process):
    job_id = enqueue()
    claim(worker_process, ["*"], worker_id="worker-1")
    first_start = datetime(2020, 1, 1, tzinfo=UTC)
    Job.objects.filter(pk=job_id).update(started_at=first_start, last_attempted_at=first_start)
    error = JobError.from_exception(ValueError("first attempt"))
    assert fail_job("default", uuid.UUID(job_id), worker_process.id, error)
    retry_failed_job(job_id)

    assert claim(worker_process, ["*"], worker_id="worker-2") == [job_id]

    job = Job.objects.get(pk=job_id)
    assert job.started_at == first_start
    assert job.last_attempted_at > first_start
    assert job.worker_ids == ["worker-1", "worker-2"]
    assert_invariants()


def test_scheduled_jobs_are_not_claimed(worker_process):
    scheduled = add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)

    assert claim(worker_process, ["*"]) == []
    assert str(ScheduledExecution.objects.get().job_id) == scheduled.id
    assert assert_invariants() == {"scheduled": 1}


def test_jobs_whose_run_after_has_passed_are_claimed(worker_process):
    due = add.using(run_after=timezone.now() - timedelta(minutes=1)).enqueue(1, 2)

    assert claim(worker_process, ["*"]) == [due.id]
    assert_invariants()


def test_pausing_a_queue_leaves_a_queue_differing_in_case_alone(worker_process):
    pause("EMAIL")
    lower = enqueue("email")

    assert claim(worker_process, ["*"]) == [lower]


def test_exact_selector_does_not_match_a_queue_with_trailing_spaces(worker_process):
    enqueue("email ")

    assert claim(worker_process, ["email"]) == []


# -- completing and claiming the next job in one go -----------------------------------


def claimant_for(process, selectors=("*",)) -> Claimant:
    return Claimant(process_id=process.pk, worker_id="worker-1", selectors=tuple(selectors))


def test_complete_and_claim_next_records_the_outcome_and_claims_the_next(worker_process):
    first, second = enqueue(priority=5), enqueue()
    [running] = claim(worker_process, ["*"], limit=1)
    assert running == first

    completed, next_job = complete_and_claim_next(
        "default",
        claimant_for(worker_process),
        job_id=uuid.UUID(first),
        return_value=7,
        preserve=True,
    )

    assert completed is True
    assert str(next_job.id) == second
    assert next_job.worker_ids == ["worker-1"]
    assert state_of(first) == "finished"
    assert Job.objects.get(pk=first).return_value == 7
    assert state_of(second) == "claimed"
    assert ClaimedExecution.objects.get().process_id == worker_process.pk
    assert_invariants()


def test_complete_and_claim_next_with_nothing_left(worker_process):
    only = enqueue()
    claim(worker_process, ["*"], limit=1)

    completed, next_job = complete_and_claim_next(
        "default",
        claimant_for(worker_process),
        job_id=uuid.UUID(only),
        return_value=None,
        preserve=False,
    )

    assert (completed, next_job) == (True, None)
    assert state_of(only) == "missing"
    assert_invariants()


def test_complete_and_claim_next_keeps_selector_order(worker_process):
    running = enqueue("default")
    claim(worker_process, ["default"], limit=1)
    later = enqueue("later", priority=50)
    sooner = enqueue("sooner")

    _, next_job = complete_and_claim_next(
        "default",
        claimant_for(worker_process, ["empty", "sooner", "later"]),
        job_id=uuid.UUID(running),
        return_value=1,
        preserve=True,
    )

    assert str(next_job.id) == sooner
    assert state_of(later) == "ready"
    assert_invariants()


def test_complete_and_claim_next_without_the_claim_records_nothing(worker_process):
    from dj_queue.operations.processes import register_process

    other = register_process("default", kind="worker", name="other", backend_alias="default")
    job = enqueue()
    claim(other, ["*"], limit=1)
    waiting = enqueue()

    completed, next_job = complete_and_claim_next(
        "default",
        claimant_for(worker_process),
        job_id=uuid.UUID(job),
        return_value=1,
        preserve=True,
    )

    assert completed is False
    assert state_of(job) == "claimed"
    assert Job.objects.get(pk=job).finished_at is None
    assert str(next_job.id) == waiting
    assert_invariants()
