"""Unique keys at enqueue: each new job with a ``unique_key`` takes it, or finds
the job that holds it — inside the enqueue's transaction.

The job table's unique index on ``unique_key`` decides, so the outcome holds
under concurrent enqueues from any number of processes: a job row is written
with "do nothing if the key is taken", and then the key's holder is read back.
Ending a job clears its key in the same transaction (see ``failures``,
``cancellation`` and the drivers' completions), unless ``unique_until`` keeps
it; such a key is freed here, when the next job asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError

from ..db import Driver
from ..models import Job

# A key freed by its holder between a failed insert and the read that looks
# for the holder: the insert is simply tried again.
ATTEMPTS = 5


def take_unique_keys(
    alias: str, cursor: Any, driver: Driver, jobs: Sequence[Any], now: datetime
) -> tuple[dict[uuid.UUID, uuid.UUID], set[uuid.UUID]]:
    """For the unique ones among ``jobs`` (NewJob calls), in order: write the row
    of each whose key is free; map each other to the job holding its key (a job
    earlier in the batch, or one already in the table). Returns (duplicates:
    new id -> holder id, ids of the rows written)."""
    unique = [job for job in jobs if job.unique_key is not None]
    if not unique:
        return {}, set()
    insert = driver.insert_missing_statement(driver.job_table, driver.job_columns, "unique_key")
    holders: dict[str, uuid.UUID] = {}
    duplicates: dict[uuid.UUID, uuid.UUID] = {}
    written: set[uuid.UUID] = set()
    jobs_table = Job.objects.using(alias)
    for job in unique:
        key = job.unique_key
        if key in holders:
            duplicates[job.id] = holders[key]
            continue
        for _ in range(ATTEMPTS):
            cursor.execute(insert, driver.job_row_params(job, finished=False, now=now))
            if driver.reports_inserted_rows and cursor.rowcount == 1:
                holder = job.id
                break
            found = (
                jobs_table.filter(unique_key=key)
                .values_list("pk", "finished_at", "unique_until")
                .first()
            )
            if found is None:
                continue  # freed meanwhile: try again
            holder, finished_at, until = found
            if holder != job.id and finished_at is not None and until is not None and until <= now:
                # Held past its job's end by unique_for, and that time has come.
                jobs_table.filter(pk=holder, unique_key=key).update(unique_key=None)
                continue
            break
        else:
            raise IntegrityError(f"unique_key {key!r} kept changing hands; try the enqueue again")
        holders[key] = holder
        if holder == job.id:
            written.add(job.id)
        else:
            duplicates[job.id] = holder
    return duplicates, written
