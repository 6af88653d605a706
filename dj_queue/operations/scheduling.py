"""Promoting scheduled jobs whose time has come."""

from __future__ import annotations

from django.db import connections
from django.utils import timezone

from ..db import get_driver
from .concurrency import limits_of_jobs, place_limited
from .transactions import in_transaction


def promote_due_jobs(
    alias: str,
    *,
    batch_size: int,
    skip_locked: bool = True,
    notify: bool = False,
    preserve_finished: bool = True,
) -> int:
    """Move up to ``batch_size`` due scheduled jobs to ready; returns how many
    left the schedule. A limited job takes its key's slot now, or is blocked (or
    discarded) like a job enqueued at this moment. With ``notify``, listening
    workers are woken for the queues given ready work (PostgreSQL)."""
    driver = get_driver(alias)
    if driver.probe_before_write and not connections[alias].in_atomic_block:
        with connections[alias].cursor() as cursor:
            if not driver.any_due(cursor, timezone.now()):
                return 0

    def promote() -> int:
        now = timezone.now()
        with connections[alias].cursor() as cursor:
            due = driver.take_due_scheduled(cursor, now, batch_size, skip_locked)
            if not due:
                return 0
            limits = limits_of_jobs(cursor, driver, [row.job_id for row in due])
            ready = place_limited(
                alias, cursor, driver, due, limits, now, preserve_discarded=preserve_finished
            )
            driver.insert_ready(cursor, ready, now)
            if ready and notify and driver.supports_notify:
                sql, params = driver.notify_statement(sorted({row.queue_name for row in ready}))
                cursor.execute(sql, params)
        return len(due)

    return in_transaction(alias, promote)
