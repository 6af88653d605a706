"""Deleting finished jobs, a batch per transaction."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from ..models import FailedExecution, Job, RecurringExecution
from .transactions import in_transaction


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
        # A recurring task's slot rows go with the jobs they produced; the
        # task's last_run_at keeps those slots from firing again.
        RecurringExecution.objects.using(alias).filter(job_id__in=doomed)._raw_delete(alias)
        Job.objects.using(alias).filter(pk__in=doomed)._raw_delete(alias)
        return len(ids), len(doomed)

    total = 0
    while True:
        selected, deleted = in_transaction(alias, delete_batch)
        total += deleted
        if selected < batch_size:
            return total
