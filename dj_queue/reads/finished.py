"""Jobs that ended, from the tally the runtime keeps (``FinishedTally``): the
last hour minute by minute, and every queue's totals since the beginning."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from ..db.tallies import FAILED, SUCCEEDED, minute_of
from ..models import FinishedTally
from .figures import FinishedTotal, MinuteThroughput

THROUGHPUT_MINUTES = 60


def throughput(
    alias: str,
    backend_alias: str,
    *,
    minutes: int = THROUGHPUT_MINUTES,
    now: datetime | None = None,
) -> tuple[MinuteThroughput, ...]:
    """Jobs that succeeded and failed in each of the last ``minutes`` minutes,
    the current one included, oldest first (a minute with none is there, 0/0):
    a range of the tally's ``(backend_alias, minute)`` index."""
    current = minute_of(now or timezone.now())
    first = current - timedelta(minutes=minutes - 1)
    rows = (
        FinishedTally.objects.using(alias)
        .filter(backend_alias=backend_alias, minute__gte=first, minute__lte=current)
        .values("minute", "status")
        .annotate(jobs=Sum("count"))
        .order_by()
    )
    found: dict[tuple[datetime, str], int] = {}
    for row in rows:
        if row["minute"] is None:  # excluded by the filter; for the type checker
            continue
        key = (minute_of(row["minute"]), row["status"])
        found[key] = found.get(key, 0) + int(row["jobs"])
    starts = [first + timedelta(minutes=offset) for offset in range(minutes)]
    return tuple(
        MinuteThroughput(start, found.get((start, SUCCEEDED), 0), found.get((start, FAILED), 0))
        for start in starts
    )


def finished_totals(alias: str, backend_alias: str) -> tuple[FinishedTotal, ...]:
    """Every job of ``backend_alias`` that ever ended, per queue and status,
    sorted. The dispatcher keeps the tally at about one row per queue, status
    and minute of the last two hours, so this sum reads a small table."""
    rows = (
        FinishedTally.objects.using(alias)
        .filter(backend_alias=backend_alias)
        .values("queue_name", "status")
        .annotate(jobs=Sum("count"))
        .order_by("queue_name", "status")
    )
    return tuple(FinishedTotal(row["queue_name"], row["status"], int(row["jobs"])) for row in rows)
