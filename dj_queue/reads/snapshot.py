"""One backend's figures read together: what the dashboard, ``stats.json`` and
the Prometheus metrics all show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.tasks import task_backends
from django.utils import timezone

from ..cron import time_zone
from ..exceptions import ConfigurationError
from .failures import failure_groups
from .figures import COUNT_CAP, Snapshot
from .finished import finished_totals, throughput
from .processes import process_summaries
from .queues import queue_summaries
from .recurring import recurring_summaries

if TYPE_CHECKING:
    from ..backend import DjQueueBackend


def dj_queue_backend(backend_alias: str) -> DjQueueBackend:
    """The dj_queue backend called ``backend_alias``, or ValueError naming the fix."""
    from ..backend import DjQueueBackend

    try:
        backend = task_backends[backend_alias]
    except Exception as exc:
        raise ValueError(f"No task backend is called {backend_alias!r} (settings.TASKS).") from exc
    if not isinstance(backend, DjQueueBackend):
        raise ValueError(
            f"Task backend {backend_alias!r} is not a dj_queue backend: its figures need "
            "TASKS[alias]['BACKEND'] = 'dj_queue.backend.DjQueueBackend'."
        )
    return backend


def snapshot(backend_alias: str, *, dashboard: bool = True, cap: int = COUNT_CAP) -> Snapshot:
    """Read ``backend_alias``'s figures. ``dashboard=False`` leaves out what
    only the dashboard shows (throughput by minute, recurring tasks, failure
    groups): what a metrics scrape needs, in fewer queries."""
    backend = dj_queue_backend(backend_alias)
    alias = backend.database_alias
    now = timezone.now()
    totals = finished_totals(alias, backend_alias)
    queues = queue_summaries(alias, also={total.queue_name for total in totals}, cap=cap, now=now)
    processes = process_summaries(alias, backend_alias, now=now, cap=cap, job_ids=dashboard)
    if not dashboard:
        return Snapshot(backend_alias, alias, now, queues, processes, totals)
    try:
        zone = time_zone(backend.config.scheduler.time_zone)
    except ConfigurationError:
        zone = time_zone(None)
    groups, sampled = failure_groups(alias)
    return Snapshot(
        backend_alias,
        alias,
        now,
        queues,
        processes,
        totals,
        throughput=throughput(alias, backend_alias, now=now),
        recurring=recurring_summaries(alias, zone, now=now),
        failure_groups=groups,
        failures_sampled=sampled,
    )
