"""Queue-level operations: pause, resume, clear, and the figures behind QueueInfo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError
from django.db.models import Count, Min
from django.utils import timezone

from ..db import get_driver
from ..models import BlockedExecution, Job, Pause, ReadyExecution, ScheduledExecution
from .concurrency import release_limited_jobs
from .transactions import in_transaction


@dataclass(frozen=True, slots=True)
class QueueFigures:
    name: str
    size: int  # ready jobs
    oldest_ready_at: datetime | None
    paused: bool
    blocked: int  # jobs waiting for a concurrency slot
    scheduled: int = 0  # jobs waiting for their run_after or for a retry's backoff


def pause_queue(alias: str, name: str) -> bool:
    """Stop workers claiming from ``name``; enqueueing goes on. False if already paused."""

    def write() -> bool:
        if Pause.objects.using(alias).filter(*get_driver(alias).queue_name_filters(name)).exists():
            return False
        Pause.objects.using(alias).create(queue_name=name, created_at=timezone.now())
        return True

    try:
        return in_transaction(alias, write)
    except IntegrityError:  # paused by someone else at the same moment
        return False


def resume_queue(alias: str, name: str) -> bool:
    """Let workers claim from ``name`` again. False if it was not paused."""
    pauses = Pause.objects.using(alias).filter(*get_driver(alias).queue_name_filters(name))
    return bool(in_transaction(alias, lambda: pauses._raw_delete(alias)))


def is_paused(alias: str, name: str) -> bool:
    return Pause.objects.using(alias).filter(*get_driver(alias).queue_name_filters(name)).exists()


def clear_queue(alias: str, name: str, *, batch_size: int = 1000) -> int:
    """Discard the ready jobs of ``name``, a batch per transaction; returns how many.
    The slots of limited jobs among them are handed on to their blocked jobs.

    Rows a worker is claiming at this moment are skipped (they are about to run),
    not waited for.
    """
    driver = get_driver(alias)

    def discard_batch() -> int:
        ready = ReadyExecution.objects.using(alias).filter(*driver.queue_name_filters(name))
        if driver.has_skip_locked:
            ready = ready.select_for_update(skip_locked=True)
        job_ids = list(ready.order_by("pk").values_list("job_id", flat=True)[:batch_size])
        ReadyExecution.objects.using(alias).filter(job_id__in=job_ids)._raw_delete(alias)
        release_limited_jobs(alias, job_ids, timezone.now())
        Job.objects.using(alias).filter(pk__in=job_ids)._raw_delete(alias)
        return len(job_ids)

    total = 0
    while True:
        discarded = in_transaction(alias, discard_batch)
        total += discarded
        if discarded < batch_size:
            return total


def queue_figures(alias: str, name: str) -> QueueFigures:
    driver = get_driver(alias)
    ready = ReadyExecution.objects.using(alias).filter(*driver.queue_name_filters(name))
    figures = ready.aggregate(size=Count("pk"), oldest=Min("created_at"))
    return QueueFigures(
        name=name,
        size=figures["size"],
        oldest_ready_at=figures["oldest"],
        paused=is_paused(alias, name),
        blocked=blocked_count(alias, name),
        scheduled=scheduled_count(alias, name),
    )


def blocked_count(alias: str, name: str) -> int:
    driver = get_driver(alias)
    blocked = BlockedExecution.objects.using(alias).filter(*driver.queue_name_filters(name))
    return blocked.count()


def scheduled_count(alias: str, name: str) -> int:
    driver = get_driver(alias)
    scheduled = ScheduledExecution.objects.using(alias).filter(*driver.queue_name_filters(name))
    return scheduled.count()


def known_queue_names(alias: str) -> list[str]:
    """Queues with waiting work (ready, scheduled or blocked) or a pause, sorted."""
    names: set[str] = set()
    for model in (ReadyExecution, ScheduledExecution, BlockedExecution, Pause):
        names.update(model.objects.using(alias).values_list("queue_name", flat=True).distinct())
    return sorted(names)
