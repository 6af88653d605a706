"""What an operator does to jobs: retry or discard failed ones, discard waiting ones.

Each acts on a list of ids in batches, a transaction per batch, skipping ids of
jobs that are not in the state it acts on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import NoReturn

from django.db import connections
from django.utils import timezone

from ..db import ReadyRow, get_driver
from ..exceptions import JobStateError
from ..ids import parse_job_ids
from ..models import BlockedExecution, FailedExecution, Job, ReadyExecution, ScheduledExecution
from .concurrency import limits_of_jobs, place_limited, release_limited_jobs
from .routing import queue_database_alias
from .transactions import in_transaction


def _in_batches(
    alias: str, job_ids: Iterable[object], batch_size: int, write: Callable[[list[uuid.UUID]], int]
) -> int:
    ids = parse_job_ids(job_ids)
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
    exists = Job.objects.using(alias).filter(pk=parse_job_ids([job_id])[0]).exists()
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


def _failed_group_ids(
    alias: str, task_path: str, exception_class: str, batch_size: int
) -> list[uuid.UUID]:
    rows = FailedExecution.objects.using(alias).filter(
        exception_class=exception_class, job__task_path=task_path
    )
    return list(rows.order_by("pk").values_list("job_id", flat=True)[:batch_size])


def _act_on_failed_group(
    alias: str,
    task_path: str,
    exception_class: str,
    batch_size: int,
    write: Callable[[str, list[uuid.UUID]], int],
) -> int:
    done = 0
    while True:
        ids = _failed_group_ids(alias, task_path, exception_class, batch_size)
        acted = in_transaction(alias, partial(write, alias, ids)) if ids else 0
        done += acted
        # Acted-on jobs leave the failed table, so the next read finds the rest;
        # a batch that did nothing (every row taken by someone else) ends it.
        if len(ids) < batch_size or not acted:
            return done


def retry_failed_group(
    task_path: str, exception_class: str, *, using: str | None = None, batch_size: int = 500
) -> int:
    """Retry every failed job of ``task_path`` whose error was ``exception_class``
    (a dotted path, as failed executions store it), a batch per transaction.
    Returns how many were retried."""
    alias = using or queue_database_alias()
    return _act_on_failed_group(alias, task_path, exception_class, batch_size, _retry_batch)


def discard_failed_group(
    task_path: str, exception_class: str, *, using: str | None = None, batch_size: int = 500
) -> int:
    """Delete every failed job of ``task_path`` whose error was ``exception_class``,
    a batch per transaction. Returns how many were deleted."""
    alias = using or queue_database_alias()
    return _act_on_failed_group(
        alias, task_path, exception_class, batch_size, _discard_failed_batch
    )
