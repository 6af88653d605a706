"""Recurring tasks with their next and last runs."""

from __future__ import annotations

from datetime import datetime, tzinfo

from django.utils import timezone

from ..cron import Schedule
from ..models import RecurringTask
from .figures import RecurringSummary

MAX_RECURRING = 500


def recurring_summaries(
    alias: str, zone: tzinfo, *, now: datetime | None = None
) -> tuple[RecurringSummary, ...]:
    """Recurring tasks by key; ``next_run`` read in ``zone``, the scheduler's."""
    now = now or timezone.now()
    tasks = (
        RecurringTask.objects.using(alias)
        .order_by("key")
        .values_list("key", "task_path", "schedule", "static", "last_run_at")[:MAX_RECURRING]
    )
    return tuple(
        RecurringSummary(key, task_path, schedule, static, _next_run(schedule, zone, now), last)
        for key, task_path, schedule, static, last in tasks
    )


def _next_run(expression: str, zone: tzinfo, now: datetime) -> datetime | None:
    try:
        return Schedule(expression, zone).following(now)
    except (ValueError, KeyError):  # a hand-edited row: shown as unreadable
        return None
