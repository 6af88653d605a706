"""Claiming ready jobs for a worker."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from ..concurrency import ConcurrencyLimit
from ..db import ClaimRequest, Completion, Driver, ReadyRow, get_driver
from ..models import ClaimedExecution, Job, ReadyExecution
from .concurrency import release_slots
from .jobs import complete_job
from .transactions import in_one_statement, in_transaction


def claim_jobs(
    alias: str,
    *,
    process_id: int,
    worker_id: str,
    selectors: Sequence[str],
    limit: int,
    skip_locked: bool = True,
) -> list[Job]:
    """Claim up to ``limit`` ready jobs for ``process_id``, in claim order.

    Selectors are served in the order given; inside one selector a higher
    priority goes first, then the older row. Paused queues are skipped. Rows
    taken by one selector are gone before the next selector looks, so
    overlapping selectors ("email", "*") never claim a job twice.
    """
    if limit < 1:
        return []
    driver = get_driver(alias)
    if driver.single_statement_transitions:
        return _claim_by_statements(
            alias, driver, process_id, worker_id, selectors, limit, skip_locked
        )
    if driver.probe_before_write and not connections[alias].in_atomic_block:
        with connections[alias].cursor() as cursor:
            if not driver.any_ready(cursor, selectors):
                return []

    def claim() -> list[Job]:
        with connections[alias].cursor() as cursor:
            return claim_within(
                alias, driver, cursor, process_id, worker_id, selectors, limit, skip_locked
            )

    return in_transaction(alias, claim)


@dataclass(frozen=True, slots=True)
class Claimant:
    """Who claims, and from where: what a worker passes to every claim."""

    process_id: int
    worker_id: str
    selectors: tuple[str, ...]
    skip_locked: bool = True


def complete_and_claim_next(
    alias: str,
    claimant: Claimant,
    *,
    job_id: uuid.UUID,
    return_value: Any,
    preserve: bool,
    limit: ConcurrencyLimit | None = None,
) -> tuple[bool, Job | None]:
    """Record a claimed job's success and claim the claimant's next job in the
    same transaction (one statement on PostgreSQL): a busy worker thread pays
    one commit per job instead of two. A limited job (``limit``) also hands its
    slot on, before the claim, so the job it unblocks can be the one claimed
    (in the same transaction except on PostgreSQL, see below). Returns whether
    the completion was recorded (False: the claim had been taken back) and the
    next job, if any."""
    driver = get_driver(alias)
    now = timezone.now()
    completion = Completion(job_id, claimant.process_id, return_value, now, preserve)
    if driver.single_statement_transitions and limit is not None:
        # Measured on PostgreSQL: the hand-on's transaction, then the claim's
        # one statement, drain faster than both in one transaction, whose
        # claim would take several statements under the key's lock.
        completed = complete_job(
            alias,
            job_id,
            claimant.process_id,
            return_value,
            preserve=preserve,
            now=now,
            limit=limit,
        )
        following = claim_jobs(
            alias,
            process_id=claimant.process_id,
            worker_id=claimant.worker_id,
            selectors=claimant.selectors,
            limit=1,
            skip_locked=claimant.skip_locked,
        )
        return completed, following[0] if following else None
    if driver.single_statement_transitions:
        first, rest = claimant.selectors[0], claimant.selectors[1:]
        sql, params = driver.complete_and_claim_statement(
            completion,
            ClaimRequest(
                first, 1, claimant.skip_locked, claimant.process_id, claimant.worker_id, now
            ),
        )
        row = in_one_statement(alias, lambda: driver.execute(sql, params).fetchone())
        completed, claimed = bool(row[0]), row[1:]
        if claimed[0] is not None:
            return completed, driver.jobs_from_rows(alias, [claimed])[0]
        if rest:
            following = claim_jobs(
                alias,
                process_id=claimant.process_id,
                worker_id=claimant.worker_id,
                selectors=rest,
                limit=1,
                skip_locked=claimant.skip_locked,
            )
            return completed, following[0] if following else None
        return completed, None

    def write() -> tuple[bool, Job | None]:
        with connections[alias].cursor() as cursor:
            completed = driver.complete(cursor, completion)
            if completed and limit is not None:
                release_slots(cursor, driver, [limit], now)
            jobs = claim_for(alias, driver, cursor, claimant, 1)
        return completed, jobs[0] if jobs else None

    return in_transaction(alias, write)


def claim_for(
    alias: str, driver: Driver, cursor: CursorWrapper, claimant: Claimant, limit: int
) -> list[Job]:
    """``claim_within`` for ``claimant``."""
    return claim_within(
        alias,
        driver,
        cursor,
        claimant.process_id,
        claimant.worker_id,
        claimant.selectors,
        limit,
        claimant.skip_locked,
    )


def claim_within(
    alias: str,
    driver: Driver,
    cursor: CursorWrapper,
    process_id: int,
    worker_id: str,
    selectors: Sequence[str],
    limit: int,
    skip_locked: bool,
) -> list[Job]:
    """The claim, inside the caller's transaction."""
    now = timezone.now()
    taken: list[ReadyRow] = []
    for selector in selectors:
        remaining = limit - len(taken)
        if remaining <= 0:
            break
        taken.extend(driver.take_ready(cursor, selector, remaining, skip_locked))
    if not taken:
        return []
    job_ids = [row.job_id for row in taken]
    driver.record_claims(cursor, job_ids, process_id, now)
    rows = driver.record_attempt(cursor, job_ids, worker_id, now)
    # Evaluated here, inside the transaction that holds the claim.
    found = driver.jobs_from_rows(alias, rows) if rows is not None else _load_jobs(alias, job_ids)
    jobs = {job.id: job for job in found}
    return [jobs[job_id] for job_id in job_ids]


# The JSON columns of a job, which a hand-edited row may fill with what Python
# cannot read.
JSON_FIELDS = ("args", "kwargs", "errors", "worker_ids", "retry_policy", "return_value")


def _load_jobs(alias: str, job_ids: Sequence[uuid.UUID]) -> list[Job]:
    try:
        return list(Job.objects.using(alias).filter(pk__in=job_ids))
    except ValueError:
        # A row holds JSON this Python cannot read (an integer of more digits
        # than int() takes): load the others whole, that one without its JSON.
        return [_load_job(alias, job_id) for job_id in job_ids]


def _load_job(alias: str, job_id: uuid.UUID) -> Job:
    try:
        return Job.objects.using(alias).get(pk=job_id)
    except ValueError:
        job = Job.objects.using(alias).defer(*JSON_FIELDS).get(pk=job_id)
        # No arguments: the job fails as malformed when it runs.
        job.args = job.kwargs = job.retry_policy = job.return_value = None
        job.errors, job.worker_ids = [], []
        return job


def _claim_by_statements(
    alias: str,
    driver: Driver,
    process_id: int,
    worker_id: str,
    selectors: Sequence[str],
    limit: int,
    skip_locked: bool,
) -> list[Job]:
    """One statement per selector, each a whole claim transaction of its own."""
    claimed: list[Job] = []
    priority_column = driver.job_columns.index("priority")
    for selector in selectors:
        remaining = limit - len(claimed)
        if remaining <= 0:
            break
        sql, params = driver.claim_statement(
            ClaimRequest(selector, remaining, skip_locked, process_id, worker_id, timezone.now())
        )
        rows = in_one_statement(alias, partial(_fetch_all, driver, sql, params))
        # The last column is the ready row's id: the claim order within a priority.
        rows.sort(key=lambda row: (-row[priority_column], row[-1]))
        claimed.extend(driver.jobs_from_rows(alias, rows))
    return claimed


def _fetch_all(driver: Driver, sql: str, params: list[Any]) -> list[Any]:
    return list(driver.execute(sql, params).fetchall())


def held_claims(alias: str, process_id: int) -> set[uuid.UUID]:
    """The ids of the jobs whose claims ``process_id`` holds, read in one statement."""
    return set(
        ClaimedExecution.objects.using(alias)
        .filter(process_id=process_id)
        .values_list("job_id", flat=True)
    )


def unclaim_jobs(alias: str, process_id: int, jobs: Sequence[Job]) -> int:
    """Give claimed jobs that never started back to their queue: a stopping
    worker's buffered jobs. Each claim ``process_id`` still holds is released,
    the job is ready again and its attempt is taken back, so that it counts
    neither as an attempt nor as started. Returns how many were given back."""
    if not jobs:
        return 0
    driver = get_driver(alias)
    now = timezone.now()

    def write() -> int:
        with connections[alias].cursor() as cursor:
            held = driver.release_claims(cursor, [job.id for job in jobs], process_id)
        for job in jobs:
            if job.id not in held:
                continue
            worker_ids = list(job.worker_ids or [])[:-1]
            changes: dict[str, Any] = {"worker_ids": worker_ids}
            if not worker_ids:
                changes.update(started_at=None, last_attempted_at=None)
            Job.objects.using(alias).filter(pk=job.id).update(**changes)
            ReadyExecution.objects.using(alias).create(
                job_id=job.id, queue_name=job.queue_name, priority=job.priority, created_at=now
            )
        return len(held)

    return in_transaction(alias, write)
