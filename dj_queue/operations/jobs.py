"""Job transitions: enqueue and finish; failing and retrying live in
``failures``, operator actions in ``interventions``, all importable from here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from ..concurrency import ConcurrencyLimit
from ..db import Completion, get_driver
from ..models import Job
from .concurrency import acquire_slots, release_slots
from .errors import JobError
from .failures import FailOutcome, fail_claims, fail_job

# Operator actions and pruning live in their own modules; these names stay
# importable from here, where the README documents them.
from .interventions import (
    discard_failed_group,
    discard_failed_job,
    discard_failed_jobs,
    discard_waiting_jobs,
    retry_failed_group,
    retry_failed_job,
    retry_failed_jobs,
)
from .pruning import delete_finished_jobs, finished_jobs
from .transactions import in_one_statement, in_transaction
from .unique import take_unique_keys


@dataclass(frozen=True, slots=True)
class NewJob:
    """One validated task call, ready to be written."""

    id: uuid.UUID
    backend_alias: str
    task_path: str
    queue_name: str
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    run_after: datetime | None
    concurrency: ConcurrencyLimit | None = None
    unique_key: str | None = None
    # Until when the key stays held even once the job finished (unique_for).
    unique_until: datetime | None = None
    # Written as they are to the job's columns of the same names.
    retry_policy: dict[str, Any] | None = None
    timeout: float | None = None

    # The job row's concurrency columns, read by the drivers' INSERTs.
    @property
    def concurrency_key(self) -> str | None:
        return self.concurrency.key if self.concurrency else None

    @property
    def concurrency_limit(self) -> int | None:
        return self.concurrency.limit if self.concurrency else None

    @property
    def concurrency_duration(self) -> float | None:
        return self.concurrency.duration if self.concurrency else None

    @property
    def concurrency_on_conflict(self) -> str | None:
        return self.concurrency.on_conflict if self.concurrency else None

    def waits_until_later(self, now: datetime) -> bool:
        return self.run_after is not None and self.run_after > now


@dataclass(frozen=True, slots=True)
class EnqueueOutcome:
    """What became of the jobs given to ``enqueue_jobs`` that were not simply written."""

    # Finished at once without running: a concurrency limit with on_conflict="discard".
    discarded: frozenset[uuid.UUID] = frozenset()
    # Not written: the id of the job that holds its unique key, for each.
    duplicates: Mapping[uuid.UUID, uuid.UUID] = field(default_factory=dict)


# Jobs per INSERT statement, so that one statement's JSON document stays modest.
ENQUEUE_CHUNK = 5000


def enqueue_jobs(
    alias: str,
    new_jobs: Sequence[NewJob],
    now: datetime,
    *,
    notify: bool = False,
    preserve_finished: bool = True,
) -> EnqueueOutcome:
    """Write jobs with their first state row: scheduled when ``run_after`` is
    still ahead of ``now``, ready otherwise. All or nothing. With ``notify``,
    listening workers are woken for the queues given ready work (PostgreSQL).

    A unique job whose key is held (by a job in the table or earlier in the
    batch) is not written. A concurrency-limited job due now takes a slot of
    its key, in the order given; without one it is blocked, or discarded when
    its task says so (kept as finished without running when
    ``preserve_finished``, else not written)."""
    driver = get_driver(alias)
    plain = not any(job.concurrency or job.unique_key for job in new_jobs)
    if driver.single_statement_transitions and plain:

        def insert(chunk: Sequence[NewJob]) -> None:
            sql, params = driver.enqueue_statement(chunk, now, notify=notify)
            with connections[alias].cursor() as cursor:
                cursor.execute(sql, params)

        if len(new_jobs) <= ENQUEUE_CHUNK:
            in_one_statement(alias, lambda: insert(new_jobs))
            return EnqueueOutcome()

        def insert_all() -> None:
            for start in range(0, len(new_jobs), ENQUEUE_CHUNK):
                insert(new_jobs[start : start + ENQUEUE_CHUNK])

        in_transaction(alias, insert_all)
        return EnqueueOutcome()
    if plain:
        # Nothing to look up first: the INSERTs alone (no notify elsewhere).
        def write_plain() -> None:
            with connections[alias].cursor() as cursor:
                driver.enqueue(cursor, new_jobs, now)

        in_transaction(alias, write_plain)
        return EnqueueOutcome()

    def write() -> EnqueueOutcome:
        with connections[alias].cursor() as cursor:
            # Keys first: a duplicate must not take a concurrency slot.
            duplicates, written = take_unique_keys(alias, cursor, driver, new_jobs, now)
            jobs = [job for job in new_jobs if job.id not in duplicates]
            wanted = [
                (job.id, job.concurrency)
                for job in jobs
                if job.concurrency is not None and not job.waits_until_later(now)
            ]
            granted = acquire_slots(cursor, driver, wanted, now) if wanted else {}
            placement: dict[uuid.UUID, str] = {}
            blocked_until: dict[uuid.UUID, datetime] = {}
            for job in jobs:
                if granted.get(job.id, True):
                    continue
                assert job.concurrency is not None
                if job.concurrency.discards:
                    placement[job.id] = "finished" if preserve_finished else "omitted"
                else:
                    placement[job.id] = "blocked"
                    blocked_until[job.id] = now + timedelta(seconds=job.concurrency.duration)
            driver.enqueue(
                cursor,
                jobs,
                now,
                placement=placement,
                blocked_until=blocked_until,
                written=written,
            )
            _discard_written(alias, written, placement, now)
            if notify and driver.supports_notify:
                queues = sorted(
                    {
                        job.queue_name
                        for job in jobs
                        if job.id not in placement and not job.waits_until_later(now)
                    }
                )
                if queues:
                    cursor.execute(*driver.notify_statement(queues))
        discarded = frozenset(job_id for job_id, place in placement.items() if place != "blocked")
        return EnqueueOutcome(discarded, duplicates)

    return in_transaction(alias, write)


def _discard_written(
    alias: str, written: set[uuid.UUID], placement: Mapping[uuid.UUID, str], now: datetime
) -> None:
    """Unique jobs written before their concurrency rule discarded them: finished
    (their key freed) or gone, as the discard wants."""
    finished = [job_id for job_id in written if placement.get(job_id) == "finished"]
    omitted = [job_id for job_id in written if placement.get(job_id) == "omitted"]
    jobs = Job.objects.using(alias)
    if finished:
        jobs.filter(pk__in=finished).update(finished_at=now, unique_key=None)
    if omitted:
        jobs.filter(pk__in=omitted)._raw_delete(alias)


def complete_job(
    alias: str,
    job_id: uuid.UUID,
    process_id: int,
    return_value: Any,
    *,
    preserve: bool,
    now: datetime | None = None,
    limit: ConcurrencyLimit | None = None,
) -> bool:
    """Mark a claimed job successful, or delete it when finished jobs are not kept.
    A limited job (``limit``, its stored rule) gives back its slot in the same
    transaction, handing it on to a blocked job of its key.

    Returns False, changing nothing, when ``process_id`` no longer holds the
    claim (the job was recovered from a process presumed dead).
    """
    completion = Completion(job_id, process_id, return_value, now or timezone.now(), preserve)
    driver = get_driver(alias)
    if driver.single_statement_transitions and limit is None:
        sql, params = driver.complete_statement(completion)
        return in_one_statement(alias, lambda: driver.execute(sql, params).fetchone() is not None)

    def write() -> bool:
        with connections[alias].cursor() as cursor:
            completed = driver.complete(cursor, completion)
            if completed and limit is not None:
                release_slots(cursor, driver, [limit], completion.finished_at)
        return completed

    return in_transaction(alias, write)


__all__ = [
    "EnqueueOutcome",
    "FailOutcome",
    "JobError",
    "NewJob",
    "complete_job",
    "delete_finished_jobs",
    "discard_failed_group",
    "discard_failed_job",
    "discard_failed_jobs",
    "discard_waiting_jobs",
    "enqueue_jobs",
    "fail_claims",
    "fail_job",
    "finished_jobs",
    "retry_failed_group",
    "retry_failed_job",
    "retry_failed_jobs",
]
