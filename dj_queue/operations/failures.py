"""Failed attempts: a job either ends failed or, when its retry policy grants
another attempt, goes back to scheduled — in the transaction that takes its
claim away, so it holds exactly one state row throughout."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from ..concurrency import ConcurrencyLimit
from ..db import get_driver
from ..db.tallies import minute_of
from ..exceptions import JobCancelledError
from ..models import ClaimedExecution, FailedExecution, FinishedTally, Job, ScheduledExecution
from ..retries import Backoff, RetryPolicy
from ..tasks_registry import known_task
from .concurrency import release_limited_jobs, release_slots
from .errors import JobError
from .transactions import in_transaction


class FailOutcome(enum.StrEnum):
    """Where a failed attempt left its job."""

    FAILED = "failed"  # no attempt left (or the error is not retried): ends FAILED
    RETRYING = "retrying"  # scheduled for another attempt after its backoff


# A retry further off than this (a century) waits this long: datetime ends at
# the year 9999, and no job is waited for longer anyway.
LONGEST_RETRY_DELAY = 100 * 365 * 24 * 3600.0


def fail_job(
    alias: str,
    job_id: uuid.UUID,
    process_id: int,
    error: JobError,
    *,
    now: datetime | None = None,
    limit: ConcurrencyLimit | None = None,
    backoff: Backoff | None = None,
    final: bool = False,
) -> FailOutcome | None:
    """Record a claimed job's failed attempt: retried if its policy allows (and
    not ``final``, as for a cancelled job), failed otherwise; a limited job
    gives back its slot either way (a retry takes one again when it is due).
    ``backoff`` is the task's own delay function, if it declares one. None,
    changing nothing, if the claim is gone."""
    failed_at = now or timezone.now()

    def write() -> FailOutcome | None:
        with connections[alias].cursor() as cursor:
            outcome = fail_claimed(
                alias, cursor, job_id, process_id, error, failed_at, backoff, final=final
            )
            if outcome is not None and limit is not None:
                release_slots(cursor, get_driver(alias), [limit], failed_at)
        return outcome

    return in_transaction(alias, write)


def fail_claimed(
    alias: str,
    cursor: Any,
    job_id: uuid.UUID,
    process_id: int,
    error: JobError,
    failed_at: datetime,
    backoff: Backoff | None,
    *,
    final: bool = False,
) -> FailOutcome | None:
    """``fail_job`` inside the caller's transaction, leaving the job's
    concurrency slot to the caller: None, changing nothing, if the claim is gone."""
    if not get_driver(alias).release_claim(cursor, job_id, process_id):
        return None
    return settle(alias, job_id, error, failed_at, backoff, final=final)


def fail_claims(alias: str, claims: Iterable[ClaimedExecution], error: JobError) -> int:
    """Settle the claims of a process that is gone: each is a failed attempt of
    its job, retried when the job's policy allows it for this error; a job
    whose cancel was requested ends failed as cancelled. Limited jobs give back
    their slots. Runs inside the caller's transaction; returns how many claims
    it settled."""
    failed_at = timezone.now()
    job_ids = []
    for claim in claims:
        ClaimedExecution.objects.using(alias).filter(pk=claim.pk)._raw_delete(alias)
        if claim.cancel_requested_at is not None:
            settle(alias, claim.job_id, cancelled_error(running=True), failed_at, None, final=True)
        else:
            settle(alias, claim.job_id, error, failed_at, None)
        job_ids.append(claim.job_id)
    release_limited_jobs(alias, job_ids, failed_at)
    return len(job_ids)


def cancelled_error(*, running: bool) -> JobError:
    when = "while it ran" if running else "before it ran"
    return JobError.from_exception(JobCancelledError(f"The job was cancelled {when}."))


def settle(
    alias: str,
    job_id: uuid.UUID,
    error: JobError,
    failed_at: datetime,
    backoff: Backoff | None,
    *,
    final: bool = False,
) -> FailOutcome:
    """Append the attempt's error and move the job, which holds no state row
    any more, on: to scheduled for a retry, or (``final``: always) to failed."""
    row = (
        Job.objects.using(alias)
        .select_for_update()
        .filter(pk=job_id)
        .values_list(
            "errors",
            "worker_ids",
            "retry_policy",
            "timeout",
            "task_path",
            "queue_name",
            "priority",
            "backend_alias",
        )
        .first()
    )
    if row is None:
        # Deleted under the claim (a hand-made change): nothing left to record.
        return FailOutcome.FAILED
    errors, worker_ids, stored_policy, timeout, task_path, queue_name, priority, backend = row
    # A hand-edited row may hold anything here: what is not a list counts as none.
    history = [*(errors if isinstance(errors, list) else []), error.as_task_error()]
    jobs = Job.objects.using(alias).filter(pk=job_id)
    policy = RetryPolicy.of_row(stored_policy, timeout)
    # Attempts that cannot be counted are taken as used up: no endless retries.
    attempts = len(worker_ids) if isinstance(worker_ids, list) else policy.max_attempts
    if not final and policy.should_retry(error.class_lineage, attempts):
        if backoff is None and policy.backoff is not None:
            backoff = _backoff_of(task_path, policy.backoff)
        delay = policy.delay_after(attempts, error.exception, backoff)
        jobs.update(errors=history)
        ScheduledExecution.objects.using(alias).create(
            job_id=job_id,
            queue_name=queue_name,
            priority=priority,
            scheduled_at=failed_at + timedelta(seconds=min(delay, LONGEST_RETRY_DELAY)),
            created_at=failed_at,
        )
        return FailOutcome.RETRYING
    # A failed job frees its unique key (unique_for holds it after successes only).
    jobs.update(finished_at=failed_at, errors=history, unique_key=None)
    FailedExecution.objects.using(alias).create(
        job_id=job_id,
        queue_name=queue_name,
        exception_class=error.exception_class_path[:255],
        message=error.message,
        traceback=error.traceback,
        created_at=failed_at,
    )
    FinishedTally.objects.using(alias).create(
        backend_alias=backend,
        queue_name=queue_name,
        status=FinishedTally.Status.FAILED,
        minute=minute_of(failed_at),
        count=1,
    )
    return FailOutcome.FAILED


def _backoff_of(task_path: str, stored_path: str) -> Backoff | None:
    """The backoff function of a task this process has imported, if it is the
    one the job was enqueued with. Never imported from the row: a stored path
    must not make a process import or call arbitrary code."""
    from ..retries import options_for

    task = known_task(task_path)
    if task is None:
        return None
    try:
        options = options_for(task)
    except Exception:
        return None
    if dict(options.values).get("backoff") != stored_path:
        return None
    return options.backoff_function
