"""Recording a worker's finished jobs in batches.

A worker process hands the outcomes of the jobs its threads finished within a
short window to one call, which records them all in one transaction (on
PostgreSQL, when they are plain successes, one statement) and claims the
worker's next jobs in the same round trip where the vendor allows it. Every
guarantee of the one-job transitions holds per row: a job is recorded only if
its process still holds its claim, a failed attempt is retried or failed by
its policy, a limited job hands its slot on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections
from django.utils import timezone

from ..concurrency import ConcurrencyLimit
from ..db import ClaimRequest, CompletionBatch, Driver, get_driver
from ..models import Job
from ..retries import Backoff
from .claims import Claimant, claim_for, claim_jobs
from .concurrency import release_slots
from .errors import JobError
from .failures import FailOutcome, fail_claimed
from .transactions import in_one_statement, in_transaction


@dataclass(frozen=True, slots=True)
class Success:
    job_id: uuid.UUID
    return_value: Any
    limit: ConcurrencyLimit | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    job_id: uuid.UUID
    error: JobError
    limit: ConcurrencyLimit | None = None
    # The task's own backoff function, if it declares one.
    backoff: Backoff | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a batch did: the successes recorded, where each failed attempt left
    its job (None: its claim was gone, nothing recorded), and the jobs claimed."""

    completed: frozenset[uuid.UUID] = frozenset()
    failed: Mapping[uuid.UUID, FailOutcome | None] = field(default_factory=dict)
    claimed: list[Job] = field(default_factory=list)


def record_outcomes(
    alias: str,
    claimant: Claimant,
    successes: Sequence[Success],
    failures: Sequence[Failure] = (),
    *,
    preserve: bool,
    claim: int = 0,
    now: datetime | None = None,
) -> Recorded:
    """Record ``successes`` and ``failures`` of jobs ``claimant`` holds, all or
    nothing, and claim up to ``claim`` ready jobs for it. Jobs whose claims
    were taken back meanwhile are left as they are."""
    now = now or timezone.now()
    if not successes and not failures:
        return Recorded(claimed=_claim(alias, claimant, claim))
    driver = get_driver(alias)
    batch = CompletionBatch(
        claimant.process_id,
        tuple((success.job_id, success.return_value) for success in successes),
        now,
        preserve,
    )
    plain = not failures and all(success.limit is None for success in successes)
    if driver.single_statement_transitions and plain:
        return _record_in_one_statement(alias, driver, claimant, batch, claim)

    def write() -> Recorded:
        with connections[alias].cursor() as cursor:
            completed = driver.complete_many(cursor, batch) if successes else set()
            limits = [s.limit for s in successes if s.limit and s.job_id in completed]
            failed: dict[uuid.UUID, FailOutcome | None] = {}
            for failure in failures:
                failed[failure.job_id] = outcome = fail_claimed(
                    alias,
                    cursor,
                    failure.job_id,
                    claimant.process_id,
                    failure.error,
                    now,
                    failure.backoff,
                )
                if outcome is not None and failure.limit is not None:
                    limits.append(failure.limit)
            if limits:
                # Before the claim, so a job the slots unblock can be claimed.
                release_slots(cursor, driver, limits, now)
            claimed = []
            if claim and not driver.single_statement_transitions:
                claimed = claim_for(alias, driver, cursor, claimant, claim)
        return Recorded(frozenset(completed), failed, claimed)

    recorded = in_transaction(alias, write)
    if claim and driver.single_statement_transitions:
        # PostgreSQL claims in a statement of its own, outside the slots' locks.
        return Recorded(recorded.completed, recorded.failed, _claim(alias, claimant, claim))
    return recorded


def _record_in_one_statement(
    alias: str, driver: Driver, claimant: Claimant, batch: CompletionBatch, claim: int
) -> Recorded:
    if not claim:
        sql, params = driver.complete_many_statement(batch)
        rows = in_one_statement(alias, lambda: list(driver.execute(sql, params).fetchall()))
        return Recorded(frozenset(driver.to_uuid(row[0]) for row in rows))
    first, rest = claimant.selectors[0], claimant.selectors[1:]
    request = ClaimRequest(
        first,
        claim,
        claimant.skip_locked,
        claimant.process_id,
        claimant.worker_id,
        batch.finished_at,
    )
    sql, params = driver.complete_many_and_claim_statement(batch, request)
    rows = in_one_statement(alias, lambda: list(driver.execute(sql, params).fetchall()))
    completed = frozenset(driver.to_uuid(job_id) for job_id in rows[0][0] or ())
    found = [row[1:] for row in rows if row[1] is not None]
    priority_column = driver.job_columns.index("priority")
    # The last column is the ready row's id: the claim order within a priority.
    found.sort(key=lambda row: (-row[priority_column], row[-1]))
    claimed = driver.jobs_from_rows(alias, found)
    if rest and len(claimed) < claim:
        claimed += claim_jobs(
            alias,
            process_id=claimant.process_id,
            worker_id=claimant.worker_id,
            selectors=rest,
            limit=claim - len(claimed),
            skip_locked=claimant.skip_locked,
        )
    return Recorded(completed, claimed=claimed)


def _claim(alias: str, claimant: Claimant, limit: int) -> list[Job]:
    return claim_jobs(
        alias,
        process_id=claimant.process_id,
        worker_id=claimant.worker_id,
        selectors=claimant.selectors,
        limit=limit,
        skip_locked=claimant.skip_locked,
    )
