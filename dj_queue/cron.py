"""Cron schedules, read by croniter: five fields ("minute hour day month
weekday"), an optional sixth for seconds, or an alias such as ``@hourly``.

Nothing here touches Django: configuration parsing uses it before apps load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .exceptions import InvalidRecurringTask

SCHEDULE_MAX_LENGTH = 255


def check_schedule(expression: object, where: str) -> str:
    """``expression`` if croniter accepts it; InvalidRecurringTask naming ``where``."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidRecurringTask(f"{where}: expected a cron expression, got {expression!r}.")
    if len(expression) > SCHEDULE_MAX_LENGTH or not croniter.is_valid(expression):
        raise InvalidRecurringTask(
            f"{where}: {expression!r} is not a cron expression croniter understands "
            "(five fields 'minute hour day month weekday', an optional sixth for seconds, "
            "or an alias such as '@hourly' or '@daily')."
        )
    return expression


def time_zone(name: str | None, where: str = "scheduler time_zone") -> tzinfo:
    """The zone cron times are read in: ``name``, else ``settings.TIME_ZONE``;
    InvalidRecurringTask naming ``where`` for a name that is not an IANA zone."""
    if name is None:
        from django.conf import settings

        name = settings.TIME_ZONE or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, a long name
        raise InvalidRecurringTask(
            f"{where}: {name!r} is not an IANA time zone (such as 'UTC' or 'Europe/Paris')."
        ) from None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron expression read in one time zone; DST as croniter handles it."""

    expression: str
    zone: tzinfo

    def latest(self, now: datetime) -> datetime:
        """The latest scheduled time at or before ``now``."""
        # croniter looks strictly before its start: a microsecond later makes
        # a time exactly on the schedule count as due.
        start = (now + timedelta(microseconds=1)).astimezone(self.zone)
        return croniter(self.expression, start).get_prev(datetime)

    def following(self, now: datetime) -> datetime:
        """The first scheduled time after ``now``."""
        return croniter(self.expression, now.astimezone(self.zone)).get_next(datetime)


def due_slot(
    schedule: Schedule, now: datetime, *, last_run_at: datetime | None, changed_at: datetime
) -> datetime | None:
    """The slot to fire at ``now``, if any: the latest scheduled time at or
    before ``now``, provided it comes after the task's last firing and after
    its last change. Whatever else was missed (while no scheduler ran) is not
    replayed: after downtime, only the latest missed slot fires."""
    slot = schedule.latest(now)
    since = changed_at if last_run_at is None else max(last_run_at, changed_at)
    return slot if slot > since else None
