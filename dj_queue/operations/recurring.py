"""Recurring tasks: keeping the table in step with the definitions, and firing.

A slot (task key, scheduled time) fires once however many schedulers run: the
firing transaction locks the task's row, checks that the slot is newer than the
last one fired, inserts the slot's row under the unique (task_key, run_at)
constraint and enqueues the job, all or nothing. A scheduler that loses the
race finds the slot taken and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.tasks import TaskResult, task_backends
from django.utils import timezone

from ..exceptions import InvalidRecurringTask
from ..models import Job, RecurringExecution, RecurringTask
from ..recurring import RecurringDefinition, configured_task
from ..tasks_registry import resolve_task
from .transactions import in_transaction

logger = logging.getLogger("dj_queue")


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: int
    changed: int
    removed: int


def sync_static_tasks(alias: str, definitions: Sequence[RecurringDefinition]) -> SyncReport:
    """Make the static rows match ``definitions``: add, change (only what
    differs, so an unchanged task keeps its history) and remove static rows no
    longer defined. Dynamic rows are left alone, except one whose key a static
    definition now claims: configuration wins."""

    def write() -> SyncReport:
        now = timezone.now()
        rows = RecurringTask.objects.using(alias).select_for_update()
        existing = {row.key: row for row in rows.filter(key__in=[d.key for d in definitions])}
        added = changed = 0
        for definition in definitions:
            values = {**definition.row_values(), "static": True}
            row = existing.get(definition.key)
            if row is None:
                RecurringTask.objects.using(alias).create(
                    key=definition.key, created_at=now, updated_at=now, **values
                )
                added += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                RecurringTask.objects.using(alias).filter(pk=row.pk).update(
                    updated_at=now, **values
                )
                changed += 1
        stale = RecurringTask.objects.using(alias).filter(static=True)
        stale = stale.exclude(key__in=[definition.key for definition in definitions])
        removed = stale._raw_delete(alias)
        return SyncReport(added, changed, removed)

    try:
        return in_transaction(alias, write)
    except IntegrityError:  # another scheduler added the same row first: compare again
        return in_transaction(alias, write)


def save_dynamic_task(alias: str, definition: RecurringDefinition) -> bool:
    """Create or update a dynamic task; True if created. A static key is refused."""

    def write() -> bool:
        now = timezone.now()
        row = RecurringTask.objects.using(alias).select_for_update().filter(key=definition.key)
        found = row.first()
        if found is not None and found.static:
            raise InvalidRecurringTask(_static_refusal(definition.key, "overwritten"))
        values = definition.row_values()
        if found is None:
            RecurringTask.objects.using(alias).create(
                key=definition.key, static=False, created_at=now, updated_at=now, **values
            )
            return True
        if any(getattr(found, name) != value for name, value in values.items()):
            row.update(updated_at=now, **values)
        return False

    try:
        return in_transaction(alias, write)
    except IntegrityError:  # created by someone else at the same moment: update it
        return in_transaction(alias, write)


def delete_dynamic_task(alias: str, key: str) -> bool:
    """Remove a dynamic task; False if there is none. A static key is refused."""

    def write() -> bool:
        found = RecurringTask.objects.using(alias).select_for_update().filter(key=key).first()
        if found is None:
            return False
        if found.static:
            raise InvalidRecurringTask(_static_refusal(key, "removed"))
        RecurringTask.objects.using(alias).filter(pk=found.pk)._raw_delete(alias)
        return True

    return in_transaction(alias, write)


def _static_refusal(key: str, verb: str) -> str:
    return (
        f"recurring task {key!r} is static (defined in OPTIONS['recurring'] or the YAML "
        f"file) and cannot be {verb} at runtime; change it in the configuration."
    )


def fire(alias: str, backend_alias: str, task_key: str, run_at: datetime) -> str | None:
    """Enqueue the task of ``task_key`` for its slot ``run_at``, once: returns
    the job id, or None when the slot was already fired (here or by another
    scheduler) or the task is gone. The task's own errors (a path that no longer
    resolves, arguments its code now refuses) propagate, nothing written."""

    def write() -> str | None:
        row = RecurringTask.objects.using(alias).select_for_update().filter(key=task_key).first()
        if row is None or (row.last_run_at is not None and row.last_run_at >= run_at):
            return None
        now = timezone.now()
        try:
            with transaction.atomic(using=alias):
                execution = RecurringExecution.objects.using(alias).create(
                    task_key=task_key, run_at=run_at, created_at=now
                )
        except IntegrityError:
            return None
        task = configured_task(resolve_task(row.task_path), row.queue_name, row.priority)
        backend = task_backends[backend_alias]
        result: TaskResult = backend.enqueue(task, list(row.args), dict(row.kwargs))
        RecurringExecution.objects.using(alias).filter(pk=execution.pk).update(job_id=result.id)
        RecurringTask.objects.using(alias).filter(pk=row.pk).update(last_run_at=run_at)
        return result.id

    return in_transaction(alias, write)


def recurring_tasks(alias: str, *, dynamic: bool) -> list[RecurringTask]:
    """The tasks a scheduler fires: the static ones, and the dynamic ones too
    when dynamic tasks are enabled."""
    rows = RecurringTask.objects.using(alias).order_by("key")
    return list(rows if dynamic else rows.filter(static=True))


def stale_executions(alias: str, before: datetime) -> QuerySet[RecurringExecution]:
    """Slot rows older than ``before`` whose job is gone (pruned, or deleted on
    success when finished jobs are not kept)."""
    jobs = Job.objects.using(alias).filter(pk=OuterRef("job_id"))
    return RecurringExecution.objects.using(alias).filter(~Exists(jobs), run_at__lt=before)


def delete_stale_executions(alias: str, *, before: datetime, batch_size: int = 1000) -> int:
    """Delete ``stale_executions``, a batch per transaction. The task's own
    ``last_run_at`` keeps a deleted slot from firing again."""
    total = 0
    while True:
        ids = list(stale_executions(alias, before).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        total += in_transaction(
            alias,
            lambda ids=ids: (
                RecurringExecution.objects.using(alias)  # type: ignore[misc]
                .filter(pk__in=ids)
                ._raw_delete(alias)
            ),
        )
        if len(ids) < batch_size:
            return total
