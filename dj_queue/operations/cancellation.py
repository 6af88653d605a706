"""Cancelling jobs.

A waiting job (ready, scheduled or blocked) leaves its queue and ends failed
with ``JobCancelledError`` in one transaction; a ready job of a limited task
hands its slot on. A running job cannot be stopped from here: its claim is
marked, and the worker holding it — in whatever process or on whatever machine —
notices within a polling interval, stops the attempt and ends the job failed
with ``JobCancelledError`` (never retried). A job that finishes before its
worker notices keeps its outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import partial

from django.utils import timezone

from ..models import BlockedExecution, ClaimedExecution, Job, ReadyExecution, ScheduledExecution
from .concurrency import release_limited_jobs
from .failures import cancelled_error, settle
from .transactions import in_transaction

BATCH_SIZE = 500


def cancel_jobs(alias: str, job_ids: Iterable[uuid.UUID], *, now: datetime | None = None) -> int:
    """Cancel the unfinished jobs among ``job_ids``: end the waiting ones, ask
    the running ones to stop. Returns how many were cancelled or asked (a
    running job asked before counts again); finished or unknown ids are skipped."""
    ids = list(dict.fromkeys(job_ids))
    moment = now or timezone.now()
    return sum(
        in_transaction(
            alias, partial(_cancel_batch, alias, ids[start : start + BATCH_SIZE], moment)
        )
        for start in range(0, len(ids), BATCH_SIZE)
    )


def _cancel_batch(alias: str, job_ids: list[uuid.UUID], now: datetime) -> int:
    unfinished = list(
        Job.objects.using(alias)
        .select_for_update()
        .filter(pk__in=job_ids, finished_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not unfinished:
        return 0
    claims = ClaimedExecution.objects.using(alias).filter(job_id__in=unfinished)
    running = set(claims.values_list("job_id", flat=True))
    claims.filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now)

    waiting = [job_id for job_id in unfinished if job_id not in running]
    ready = ReadyExecution.objects.using(alias).filter(job_id__in=waiting)
    ready_ids = list(ready.values_list("job_id", flat=True))
    ready._raw_delete(alias)
    for model in (ScheduledExecution, BlockedExecution):
        model.objects.using(alias).filter(job_id__in=waiting)._raw_delete(alias)
    # A ready job of a limited task held a slot: the next blocked job gets it.
    release_limited_jobs(alias, ready_ids, now)
    error = cancelled_error(running=False)
    for job_id in waiting:
        settle(alias, job_id, error, now, None, final=True)
    return len(unfinished)


def cancel_requests(alias: str, process_id: int) -> list[uuid.UUID]:
    """The jobs claimed by ``process_id`` whose cancel was requested (a read)."""
    return list(
        ClaimedExecution.objects.using(alias)
        .filter(process_id=process_id, cancel_requested_at__isnull=False)
        .values_list("job_id", flat=True)
    )


def cancel_requested(alias: str, job_id: uuid.UUID) -> bool:
    """Whether the running job ``job_id`` has been asked to stop (a read)."""
    return (
        ClaimedExecution.objects.using(alias)
        .filter(job_id=job_id, cancel_requested_at__isnull=False)
        .exists()
    )
