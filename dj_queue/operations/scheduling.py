"""Promoting scheduled jobs whose time has come."""

from __future__ import annotations

from django.db import connections
from django.utils import timezone

from ..db import get_driver
from ..models import ReadyExecution
from .transactions import in_transaction


def promote_due_jobs(
    alias: str, *, batch_size: int, skip_locked: bool = True, notify: bool = False
) -> int:
    """Move up to ``batch_size`` due scheduled jobs to ready; returns how many.
    With ``notify``, listening workers are woken for those queues (PostgreSQL)."""
    driver = get_driver(alias)
    if driver.probe_before_write and not connections[alias].in_atomic_block:
        with connections[alias].cursor() as cursor:
            if not driver.any_due(cursor, timezone.now()):
                return 0

    def promote() -> int:
        now = timezone.now()
        with connections[alias].cursor() as cursor:
            due = driver.take_due_scheduled(cursor, now, batch_size, skip_locked)
        if due:
            ReadyExecution.objects.using(alias).bulk_create(
                [
                    ReadyExecution(
                        job_id=row.job_id,
                        queue_name=row.queue_name,
                        priority=row.priority,
                        created_at=now,
                    )
                    for row in due
                ]
            )
            if notify and driver.supports_notify:
                sql, params = driver.notify_statement(sorted({row.queue_name for row in due}))
                with connections[alias].cursor() as cursor:
                    cursor.execute(sql, params)
        return len(due)

    return in_transaction(alias, promote)
