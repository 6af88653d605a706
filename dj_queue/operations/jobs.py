"""Job transitions: enqueue, finish, fail, retry and discard."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NoReturn

from django.db import connections
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from ..concurrency import ConcurrencyLimit
from ..db import Completion, ReadyRow, get_driver
from ..exceptions import JobStateError
from ..ids import parse_job_id
from ..models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    ReadyExecution,
    ScheduledExecution,
)
from .concurrency import (
    acquire_slots,
    limits_of_jobs,
    place_limited,
    release_limited_jobs,
    release_slots,
)
from .routing import queue_database_alias
from .transactions import in_one_statement, in_transaction


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
class JobError:
    """What one failed attempt left behind."""

    exception_class_path: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> JobError:
        kind = type(exc)
        try:
            message = str(exc)
        except Exception:
            message = f"<unprintable {kind.__qualname__}>"
        return cls(
            exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
            message=_storable(message),
            traceback=_storable("".join(traceback.format_exception(exc))),
        )

    def as_task_error(self) -> dict[str, str]:
        return {"exception_class_path": self.exception_class_path, "traceback": self.traceback}


def _storable(text: str) -> str:
    """``text`` with what no database can store (NUL, lone surrogates) escaped,
    so that recording an error can never fail on the error's own text."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Jobs per INSERT statement, so that one statement's JSON document stays modest.
ENQUEUE_CHUNK = 5000


def enqueue_jobs(
    alias: str,
    new_jobs: Sequence[NewJob],
    now: datetime,
    *,
    notify: bool = False,
    preserve_finished: bool = True,
) -> set[uuid.UUID]:
    """Write jobs with their first state row: scheduled when ``run_after`` is
    still ahead of ``now``, ready otherwise. All or nothing. With ``notify``,
    listening workers are woken for the queues given ready work (PostgreSQL).

    A concurrency-limited job due now takes a slot of its key, in the order
    given; without one it is blocked, or discarded when its task says so (kept
    as finished without running when ``preserve_finished``, else not written).
    Returns the ids of the discarded jobs."""
    driver = get_driver(alias)
    if driver.single_statement_transitions and not any(job.concurrency for job in new_jobs):

        def insert(chunk: Sequence[NewJob]) -> None:
            sql, params = driver.enqueue_statement(chunk, now, notify=notify)
            with connections[alias].cursor() as cursor:
                cursor.execute(sql, params)

        if len(new_jobs) <= ENQUEUE_CHUNK:
            in_one_statement(alias, lambda: insert(new_jobs))
            return set()

        def insert_all() -> None:
            for start in range(0, len(new_jobs), ENQUEUE_CHUNK):
                insert(new_jobs[start : start + ENQUEUE_CHUNK])

        in_transaction(alias, insert_all)
        return set()

    def write() -> set[uuid.UUID]:
        with connections[alias].cursor() as cursor:
            wanted = [
                (job.id, job.concurrency)
                for job in new_jobs
                if job.concurrency is not None and not job.waits_until_later(now)
            ]
            granted = acquire_slots(cursor, driver, wanted, now) if wanted else {}
            placement: dict[uuid.UUID, str] = {}
            blocked_until: dict[uuid.UUID, datetime] = {}
            for job in new_jobs:
                if granted.get(job.id, True):
                    continue
                assert job.concurrency is not None
                if job.concurrency.discards:
                    placement[job.id] = "finished" if preserve_finished else "omitted"
                else:
                    placement[job.id] = "blocked"
                    blocked_until[job.id] = now + timedelta(seconds=job.concurrency.duration)
            driver.enqueue(cursor, new_jobs, now, placement=placement, blocked_until=blocked_until)
            if notify and driver.supports_notify:
                queues = sorted(
                    {
                        job.queue_name
                        for job in new_jobs
                        if job.id not in placement and not job.waits_until_later(now)
                    }
                )
                if queues:
                    cursor.execute(*driver.notify_statement(queues))
        return {job_id for job_id, place in placement.items() if place != "blocked"}

    return in_transaction(alias, write)


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


def fail_job(
    alias: str,
    job_id: uuid.UUID,
    process_id: int,
    error: JobError,
    *,
    now: datetime | None = None,
    limit: ConcurrencyLimit | None = None,
) -> bool:
    """Move a claimed job to failed, keeping the error, and give back its slot
    if it is limited; False if the claim is gone."""
    failed_at = now or timezone.now()

    def write() -> bool:
        if not _release_claim(alias, job_id, process_id):
            return False
        _record_failure(alias, job_id, error, failed_at)
        if limit is not None:
            with connections[alias].cursor() as cursor:
                release_slots(cursor, get_driver(alias), [limit], failed_at)
        return True

    return in_transaction(alias, write)


def fail_claims(alias: str, claims: Iterable[ClaimedExecution], error: JobError) -> int:
    """Fail claimed jobs whose process is gone, giving back the slots of the
    limited ones. Runs inside the caller's transaction."""
    failed_at = timezone.now()
    job_ids = []
    for claim in claims:
        ClaimedExecution.objects.using(alias).filter(pk=claim.pk)._raw_delete(alias)
        _record_failure(alias, claim.job_id, error, failed_at)
        job_ids.append(claim.job_id)
    release_limited_jobs(alias, job_ids, failed_at)
    return len(job_ids)


def _release_claim(alias: str, job_id: uuid.UUID, process_id: int) -> bool:
    deleted = (
        ClaimedExecution.objects.using(alias)
        .filter(job_id=job_id, process_id=process_id)
        ._raw_delete(alias)
    )
    return bool(deleted)


def _record_failure(alias: str, job_id: uuid.UUID, error: JobError, failed_at: datetime) -> None:
    errors = (
        Job.objects.using(alias)
        .select_for_update()
        .filter(pk=job_id)
        .values_list("errors", flat=True)
    )
    history = list(errors[0] or []) if errors else []
    history.append(error.as_task_error())
    Job.objects.using(alias).filter(pk=job_id).update(finished_at=failed_at, errors=history)
    FailedExecution.objects.using(alias).create(
        job_id=job_id,
        exception_class=error.exception_class_path[:255],
        message=error.message,
        traceback=error.traceback,
        created_at=failed_at,
    )


def _job_ids(job_ids: Iterable[object]) -> list[uuid.UUID]:
    parsed = []
    for job_id in job_ids:
        value = parse_job_id(job_id)
        if value is None:
            raise JobStateError(f"{job_id!r} is not a dj_queue job id.")
        parsed.append(value)
    return parsed


def _in_batches(
    alias: str, job_ids: Iterable[object], batch_size: int, write: Callable[[list[uuid.UUID]], int]
) -> int:
    ids = _job_ids(job_ids)
    done = 0
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        done += in_transaction(alias, partial(write, batch))
    return done


def _retry_batch(alias: str, job_ids: list[uuid.UUID]) -> int:
    failures = FailedExecution.objects.using(alias).select_for_update().filter(job_id__in=job_ids)
    failed_ids = list(failures.values_list("job_id", flat=True))
    if not failed_ids:
        return 0
    now = timezone.now()
    FailedExecution.objects.using(alias).filter(job_id__in=failed_ids)._raw_delete(alias)
    jobs = Job.objects.using(alias).filter(pk__in=failed_ids)
    jobs.update(finished_at=None)
    rows = [
        ReadyRow(0, job_id, queue, priority)
        for job_id, queue, priority in jobs.values_list("pk", "queue_name", "priority")
    ]
    driver = get_driver(alias)
    with connections[alias].cursor() as cursor:
        # A limited job needs a slot again; without one it waits blocked (an
        # operator's retry is never discarded).
        limits = limits_of_jobs(cursor, driver, failed_ids)
        ready = place_limited(alias, cursor, driver, rows, limits, now, discard=False)
        driver.insert_ready(cursor, ready, now)
    return len(failed_ids)


def _discard_failed_batch(alias: str, job_ids: list[uuid.UUID]) -> int:
    failures = FailedExecution.objects.using(alias).select_for_update().filter(job_id__in=job_ids)
    failed_ids = list(failures.values_list("job_id", flat=True))
    FailedExecution.objects.using(alias).filter(job_id__in=failed_ids)._raw_delete(alias)
    Job.objects.using(alias).filter(pk__in=failed_ids)._raw_delete(alias)
    return len(failed_ids)


def retry_failed_jobs(
    job_ids: Iterable[uuid.UUID | str], *, using: str | None = None, batch_size: int = 500
) -> int:
    """Put failed jobs back in their queues as ready, their error history kept.
    Ids of jobs that are not failed are skipped. Returns how many were retried."""
    alias = using or queue_database_alias()
    return _in_batches(alias, job_ids, batch_size, partial(_retry_batch, alias))


def discard_failed_jobs(
    job_ids: Iterable[uuid.UUID | str], *, using: str | None = None, batch_size: int = 500
) -> int:
    """Delete failed jobs for good. Ids of jobs that are not failed are skipped.
    Returns how many were deleted."""
    alias = using or queue_database_alias()
    return _in_batches(alias, job_ids, batch_size, partial(_discard_failed_batch, alias))


def retry_failed_job(job_id: uuid.UUID | str, *, using: str | None = None) -> None:
    """Put a failed job back in its queue as ready; its error history stays.

    Raises JobStateError when the job does not exist or is not failed.
    """
    if not retry_failed_jobs([job_id], using=using):
        _not_failed(job_id, using)


def discard_failed_job(job_id: uuid.UUID | str, *, using: str | None = None) -> None:
    """Delete a failed job and its failure for good.

    Raises JobStateError when the job does not exist or is not failed.
    """
    if not discard_failed_jobs([job_id], using=using):
        _not_failed(job_id, using)


def _not_failed(job_id: uuid.UUID | str, using: str | None) -> NoReturn:
    alias = using or queue_database_alias()
    exists = Job.objects.using(alias).filter(pk=_job_ids([job_id])[0]).exists()
    state = "is not failed" if exists else "does not exist"
    raise JobStateError(f"Job {job_id} {state}; only failed jobs can be retried or discarded.")


def _discard_waiting_batch(alias: str, job_ids: list[uuid.UUID]) -> int:
    waiting: set[uuid.UUID] = set()
    holding: list[uuid.UUID] = []  # ready jobs hold their key's slot
    for model in (ReadyExecution, ScheduledExecution, BlockedExecution):
        rows = model.objects.using(alias).select_for_update().filter(job_id__in=job_ids)
        ids = list(rows.values_list("job_id", flat=True))
        model.objects.using(alias).filter(job_id__in=ids)._raw_delete(alias)
        waiting.update(ids)
        if model is ReadyExecution:
            holding = ids
    release_limited_jobs(alias, holding, timezone.now())
    Job.objects.using(alias).filter(pk__in=waiting)._raw_delete(alias)
    return len(waiting)


def discard_waiting_jobs(
    job_ids: Iterable[uuid.UUID | str], *, using: str | None = None, batch_size: int = 500
) -> int:
    """Delete jobs that are still ready, scheduled or blocked, for good (a ready
    limited job's slot is handed on). Jobs in any other state (running, failed,
    finished) are skipped. Returns how many were deleted."""
    alias = using or queue_database_alias()
    return _in_batches(alias, job_ids, batch_size, partial(_discard_waiting_batch, alias))


def finished_jobs(
    alias: str,
    *,
    finished_before: datetime,
    task_path: str | None = None,
    include_failed: bool = False,
) -> QuerySet[Job]:
    """Jobs that finished before ``finished_before``: successful ones, and failed
    ones too with ``include_failed``; never a job that still waits or runs."""
    jobs = Job.objects.using(alias).filter(finished_at__lt=finished_before)
    if task_path is not None:
        jobs = jobs.filter(task_path=task_path)
    if not include_failed:
        jobs = jobs.filter(~Exists(FailedExecution.objects.filter(job_id=OuterRef("pk"))))
    return jobs


def delete_finished_jobs(
    alias: str,
    *,
    finished_before: datetime,
    batch_size: int = 1000,
    task_path: str | None = None,
    include_failed: bool = False,
) -> int:
    """Delete ``finished_jobs(...)``, a batch per transaction, so a table of
    millions is never locked at once. Returns how many were deleted."""

    def finished() -> QuerySet[Job]:
        return finished_jobs(
            alias,
            finished_before=finished_before,
            task_path=task_path,
            include_failed=include_failed,
        )

    def delete_batch() -> tuple[int, int]:
        ids = list(finished().order_by("finished_at").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return 0, 0
        # Selected again under lock: a failed job may have been retried meanwhile.
        doomed = list(
            finished().filter(pk__in=ids).select_for_update().values_list("pk", flat=True)
        )
        if include_failed:
            FailedExecution.objects.using(alias).filter(job_id__in=doomed)._raw_delete(alias)
        Job.objects.using(alias).filter(pk__in=doomed)._raw_delete(alias)
        return len(ids), len(doomed)

    total = 0
    while True:
        selected, deleted = in_transaction(alias, delete_batch)
        total += deleted
        if selected < batch_size:
            return total
