"""Concurrency limits in the operations layer: slots taken at enqueue and
promotion, handed on when a holder leaves, expiry and maintenance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus, default_task_backend, task
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from dj_queue.concurrency import ConcurrencyLimit
from dj_queue.exceptions import JobStateError
from dj_queue.models import BlockedExecution, Job, ReadyExecution, ScheduledExecution, Semaphore
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.concurrency import release_blocked_job, run_concurrency_maintenance
from dj_queue.operations.jobs import (
    JobError,
    discard_waiting_jobs,
    fail_job,
    retry_failed_job,
)
from dj_queue.operations.processes import deregister_process
from dj_queue.operations.queues import clear_queue
from dj_queue.operations.scheduling import promote_due_jobs
from dj_queue.runtime.execution import ExecutionContext, execute_job
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import (
    add,
    late_declared,
    paired,
    refresh_report,
    sync_account,
    with_default_action,
)

pytestmark = pytest.mark.django_db


def run_next(process, selectors=("*",)):
    """Claim one job and run it through the worker's own code path."""
    jobs = claim_jobs(
        "default", process_id=process.id, worker_id="w", selectors=list(selectors), limit=1
    )
    assert jobs, "nothing to claim"
    context = ExecutionContext(
        alias="default",
        process_id=process.id,
        preserve_finished_jobs=True,
        stopping=lambda: False,
    )
    execute_job(jobs[0], context)
    return str(jobs[0].id)


def claim_one(process):
    jobs = claim_jobs("default", process_id=process.id, worker_id="w", selectors=["*"], limit=1)
    return jobs[0]


def free_slots(key: str) -> int | None:
    return Semaphore.objects.filter(key=key).values_list("value", flat=True).first()


def test_first_job_of_a_key_is_ready_the_next_blocked_and_other_keys_go_on():
    first = sync_account.enqueue(1, "a")
    second = sync_account.enqueue(1, "b")
    other = sync_account.enqueue(2, "a")

    assert [state_of(r.id) for r in (first, second, other)] == ["ready", "blocked", "ready"]
    blocked = BlockedExecution.objects.get(job_id=second.id)
    assert blocked.concurrency_key == "account:1"
    assert blocked.expires_at > timezone.now() + timedelta(seconds=50)
    assert second.status == TaskResultStatus.READY
    assert default_task_backend.get_result(second.id).status == TaskResultStatus.READY
    assert free_slots("account:1") == 0
    assert free_slots("account:2") == 0
    job = Job.objects.get(pk=first.id)
    assert (job.concurrency_key, job.concurrency_limit, job.concurrency_duration) == (
        "account:1",
        1,
        60.0,
    )
    assert_invariants()


def test_a_finished_holder_hands_its_slot_to_the_next_blocked_job(worker_process):
    first = sync_account.enqueue(7, "a")
    second = sync_account.enqueue(7, "b")

    assert run_next(worker_process) == first.id
    assert state_of(first.id) == "finished"
    assert state_of(second.id) == "ready"
    assert free_slots("account:7") == 0

    assert run_next(worker_process) == second.id
    assert free_slots("account:7") == 1
    assert_invariants()


def test_a_failed_holder_hands_its_slot_on(worker_process):
    first = sync_account.enqueue(3)
    second = sync_account.enqueue(3)
    job = claim_one(worker_process)

    error = JobError.from_exception(ValueError("no"))
    assert fail_job("default", job.id, worker_process.id, error, limit=ConcurrencyLimit.of_job(job))

    assert state_of(first.id) == "failed"
    assert state_of(second.id) == "ready"


def test_hand_off_takes_the_best_priority_then_the_oldest(worker_process):
    sync_account.enqueue(5)
    low = sync_account.enqueue(5, "low")
    high = sync_account.using(priority=20).enqueue(5, "high")
    later_high = sync_account.using(priority=20).enqueue(5, "later")

    run_next(worker_process)
    assert [state_of(r.id) for r in (low, high, later_high)] == ["blocked", "ready", "blocked"]
    run_next(worker_process)
    assert [state_of(r.id) for r in (low, later_high)] == ["blocked", "ready"]


def test_a_limit_of_two_admits_two(worker_process):
    results = [paired.enqueue("g", n) for n in range(4)]

    assert [state_of(r.id) for r in results] == ["ready", "ready", "blocked", "blocked"]
    run_next(worker_process)
    assert [state_of(r.id) for r in results[2:]] == ["ready", "blocked"]


def test_discard_drops_a_duplicate_while_the_first_waits_and_the_key_frees_again(
    worker_process,
):
    first = refresh_report.enqueue("sales")
    duplicate = refresh_report.enqueue("sales")

    assert duplicate.status == TaskResultStatus.SUCCESSFUL
    assert duplicate.attempts == 0 and duplicate.started_at is None
    assert duplicate.finished_at is not None and duplicate.return_value is None
    assert default_task_backend.get_result(duplicate.id) == duplicate
    assert state_of(duplicate.id) == "finished"
    assert not BlockedExecution.objects.exists()

    run_next(worker_process)
    assert state_of(first.id) == "finished"
    again = refresh_report.enqueue("sales")
    assert state_of(again.id) == "ready"
    assert_invariants()


def test_enqueue_all_applies_the_rules_item_by_item_in_order():
    results = default_task_backend.enqueue_all(
        [
            (sync_account, [10], {}),
            (sync_account, [11], {}),
            (sync_account, [10], {"action": "again"}),
            (add, [1, 2], {}),
            (refresh_report, ["x"], {}),
            (refresh_report, ["x"], {}),
        ]
    )

    states = [state_of(r.id) for r in results]
    assert states == ["ready", "ready", "blocked", "ready", "ready", "finished"]
    assert results[5].status == TaskResultStatus.SUCCESSFUL
    assert_invariants()


def test_a_scheduled_limited_job_takes_its_slot_when_promoted(worker_process):
    soon = timezone.now() + timedelta(hours=1)
    scheduled = sync_account.using(run_after=soon).enqueue(20)
    assert state_of(scheduled.id) == "scheduled"
    assert free_slots("account:20") is None  # no slot taken yet

    holder = sync_account.enqueue(20)
    ScheduledExecution.objects.filter(job_id=scheduled.id).update(
        scheduled_at=timezone.now() - timedelta(seconds=1)
    )
    assert promote_due_jobs("default", batch_size=10) == 1
    assert state_of(scheduled.id) == "blocked"

    assert run_next(worker_process) == holder.id
    assert state_of(scheduled.id) == "ready"


def test_a_scheduled_discarding_job_is_discarded_at_promotion_if_its_key_is_taken():
    refresh_report.enqueue("q")
    later = refresh_report.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("q")
    ScheduledExecution.objects.update(scheduled_at=timezone.now() - timedelta(seconds=1))

    promote_due_jobs("default", batch_size=10)

    assert state_of(later.id) == "finished"
    assert default_task_backend.get_result(later.id).attempts == 0


def test_a_recovered_claim_of_a_dead_process_hands_its_slot_on(worker_process):
    first = sync_account.enqueue(30)
    second = sync_account.enqueue(30)
    claim_one(worker_process)

    assert deregister_process("default", worker_process.id, reason="was killed") == 1

    assert state_of(first.id) == "failed"
    assert state_of(second.id) == "ready"


def test_a_retried_limited_job_waits_blocked_while_its_key_is_taken(worker_process):
    first = sync_account.enqueue(40)
    job = claim_one(worker_process)
    fail_job(
        "default",
        job.id,
        worker_process.id,
        JobError.from_exception(ValueError()),
        limit=ConcurrencyLimit.of_job(job),
    )
    holder = sync_account.enqueue(40)
    assert state_of(holder.id) == "ready"

    retry_failed_job(first.id)

    assert state_of(first.id) == "blocked"
    run_next(worker_process)
    assert state_of(first.id) == "ready"
    assert_invariants()


def test_discarding_a_waiting_holder_hands_its_slot_on_and_blocked_jobs_can_be_discarded():
    holder = sync_account.enqueue(50)
    blocked = sync_account.enqueue(50)
    third = sync_account.enqueue(50)

    assert discard_waiting_jobs([holder.id]) == 1
    assert state_of(blocked.id) == "ready"
    assert discard_waiting_jobs([third.id]) == 1
    assert state_of(third.id) == "missing"
    assert free_slots("account:50") == 0


def test_clearing_a_queue_hands_the_slots_of_its_jobs_on():
    sync_account.enqueue(60)
    other_queue = sync_account.using(queue_name="other").enqueue(60)

    assert clear_queue("default", "default") == 1

    assert state_of(other_queue.id) == "ready"


def expire(key: str) -> None:
    Semaphore.objects.filter(key=key).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_maintenance_expires_a_semaphore_whose_holder_vanished_and_releases_its_waiters():
    holder = sync_account.enqueue(70)
    waiting = sync_account.enqueue(70)
    # The holder vanishes without giving back its slot (its rows deleted by hand).
    Job.objects.filter(pk=holder.id).delete()
    assert state_of(waiting.id) == "blocked"
    assert run_concurrency_maintenance("default").released_jobs == 0  # not expired yet

    expire("account:70")
    report = run_concurrency_maintenance("default")

    assert (report.expired_semaphores, report.released_jobs) == (1, 1)
    assert state_of(waiting.id) == "ready"
    assert free_slots("account:70") == 0
    semaphore = Semaphore.objects.get(key="account:70")
    assert semaphore.expires_at > timezone.now() + timedelta(seconds=50)


def test_maintenance_deletes_an_expired_semaphore_nobody_waits_for():
    sync_account.enqueue(71)
    expire("account:71")

    assert run_concurrency_maintenance("default").expired_semaphores == 1

    assert not Semaphore.objects.filter(key="account:71").exists()


def test_maintenance_rechecks_expired_blocked_jobs_and_releases_them_if_their_key_has_room():
    sync_account.enqueue(72)
    waiting = sync_account.enqueue(72)
    # A slot given back without the hand-off (a row fixed by hand, say).
    Semaphore.objects.filter(key="account:72").update(value=1)
    BlockedExecution.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert run_concurrency_maintenance("default").released_jobs == 1

    assert state_of(waiting.id) == "ready"
    assert free_slots("account:72") == 0


def test_maintenance_pushes_back_the_recheck_of_jobs_that_still_wait():
    sync_account.enqueue(73)
    waiting = sync_account.enqueue(73)
    BlockedExecution.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert run_concurrency_maintenance("default").released_jobs == 0

    assert state_of(waiting.id) == "blocked"
    assert BlockedExecution.objects.get().expires_at > timezone.now()


def test_a_blocked_job_released_by_hand_runs_outside_its_key(worker_process):
    holder = sync_account.enqueue(80)
    blocked = sync_account.enqueue(80)
    next_one = sync_account.enqueue(80)

    release_blocked_job(blocked.id)

    assert state_of(blocked.id) == "ready"
    assert Job.objects.get(pk=blocked.id).concurrency_key is None
    assert free_slots("account:80") == 0
    # Running it gives back no slot: the key still admits one job at a time.
    run_next(worker_process)  # the holder (older)
    assert state_of(holder.id) == "finished"
    assert state_of(next_one.id) == "ready"
    run_next(worker_process)
    assert free_slots("account:80") == 0
    with pytest.raises(JobStateError, match="not blocked"):
        release_blocked_job(blocked.id)


def test_rejected_calls_write_nothing():
    with pytest.raises(InvalidTask, match="signature"):
        sync_account.enqueue()
    with pytest.raises(InvalidTask, match="at most 255"):
        sync_account.enqueue("x" * 300)
    assert not Job.objects.exists() and not Semaphore.objects.exists()


def test_an_enqueue_all_with_one_bad_key_writes_nothing():
    with pytest.raises(InvalidTask, match=r"task_calls\[1\]"):
        default_task_backend.enqueue_all([(sync_account, [1], {}), (sync_account, ["y" * 300], {})])
    assert not Job.objects.exists() and not ReadyExecution.objects.exists()


def undecorated(account_id, action="sync"):
    return account_id


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency_key": "acct:{missing}"}, "concurrency_key .* names 'missing'"),
        ({"concurrency_key": "acct:{0}"}, "concurrency_key .* by position"),
        ({"concurrency_key": "acct:{account_id"}, "concurrency_key .* not a valid template"),
        ({"concurrency_key": "a:{account_id}", "concurrency_limit": 0}, "concurrency_limit"),
        ({"concurrency_key": "a:{account_id}", "concurrency_limit": True}, "concurrency_limit"),
        ({"concurrency_key": "a:{account_id}", "concurrency_duration": -1}, "concurrency_duration"),
        ({"concurrency_key": "a:{account_id}", "on_conflict": "skip"}, "on_conflict"),
        ({"concurrency_limit": 2}, "concurrency_key is missing"),
    ],
)
def test_bad_declarations_fail_at_the_task_line_naming_task_and_option(options, message):
    with pytest.raises(InvalidTask, match=f"undecorated.*{message}"):
        task(**options)(undecorated)


def test_bad_function_attributes_fail_at_enqueue_and_in_the_system_check(monkeypatch):
    monkeypatch.setattr(late_declared.func, "concurrency_key", "acct:{nope}", raising=False)

    with pytest.raises(InvalidTask, match=r"late_declared: concurrency_key .* names .nope."):
        late_declared.enqueue(1)
    assert not Job.objects.exists()
    errors = default_task_backend.check()
    assert any("names 'nope'" in error.msg for error in errors)


def test_defaults_of_the_signature_fill_the_key():
    result = with_default_action.enqueue(5)
    assert Job.objects.get(pk=result.id).concurrency_key == "acct:5:sync"


def test_a_busy_thread_hands_its_slot_on_and_claims_the_unblocked_job_in_one_go(
    worker_process,
):
    from dj_queue.operations.claims import Claimant, complete_and_claim_next

    sync_account.enqueue(90)
    waiting = sync_account.enqueue(90)
    job = claim_one(worker_process)
    claimant = Claimant(process_id=worker_process.id, worker_id="w", selectors=("*",))

    completed, next_job = complete_and_claim_next(
        "default",
        claimant,
        job_id=job.id,
        return_value=None,
        preserve=True,
        limit=ConcurrencyLimit.of_job(job),
    )

    assert completed and str(next_job.id) == waiting.id
    assert state_of(waiting.id) == "claimed"
    assert free_slots("account:90") == 0
    assert_invariants()
