"""Claiming ready jobs for a worker."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import connections
from django.utils import timezone

from ..db import Driver, ReadyRow, get_driver
from ..models import Job
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
            driver.record_claims(cursor, job_ids, process_id, now)
            rows = driver.record_attempt(cursor, job_ids, worker_id, now)
        if rows is not None:
            found = driver.jobs_from_rows(alias, rows)
        else:
            # Evaluated here, inside the transaction that holds the claim.
            found = list(Job.objects.using(alias).filter(pk__in=job_ids))
        jobs = {job.id: job for job in found}
        return [jobs[job_id] for job_id in job_ids]

    return in_transaction(alias, claim)


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
            selector=selector,
            limit=remaining,
            skip_locked=skip_locked,
            process_id=process_id,
            worker_id=worker_id,
            now=timezone.now(),
        )
        rows = in_one_statement(alias, partial(_fetch_all, driver, sql, params))
        # The last column is the ready row's id: the claim order within a priority.
        rows.sort(key=lambda row: (-row[priority_column], row[-1]))
        claimed.extend(driver.jobs_from_rows(alias, rows))
    return claimed


def _fetch_all(driver: Driver, sql: str, params: list[Any]) -> list[Any]:
    return list(driver.execute(sql, params).fetchall())
