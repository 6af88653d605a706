"""Claiming ready jobs for a worker."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from django.utils import timezone

from ..db import ReadyRow, get_driver
from ..models import ClaimedExecution, Job
from .transactions import in_transaction


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

    def claim() -> list[Job]:
        now = timezone.now()
        taken: list[ReadyRow] = []
        with connections[alias].cursor() as cursor:
            for selector in selectors:
                remaining = limit - len(taken)
                if remaining <= 0:
                    break
                taken.extend(driver.take_ready(cursor, selector, remaining, skip_locked))
            if not taken:
                return []
            job_ids = [row.job_id for row in taken]
            ClaimedExecution.objects.using(alias).bulk_create(
                [
                    ClaimedExecution(job_id=job_id, process_id=process_id, created_at=now)
                    for job_id in job_ids
                ]
            )
            driver.record_attempt(cursor, job_ids, worker_id, now)
        # Evaluated here, inside the transaction that holds the claim.
        jobs = {job.id: job for job in Job.objects.using(alias).filter(pk__in=job_ids)}
        return [jobs[job_id] for job_id in job_ids]

    return in_transaction(alias, claim)
