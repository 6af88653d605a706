"""Keeping the finished-jobs tally small: each ended minute's rows merged into
one, and minutes older than the window into one row per queue and status.

The runtime adds a tally row per batch it finishes (see ``dj_queue.db.tallies``);
merging never changes a sum, so readers may read at any moment.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from ..db import get_driver
from ..db.tallies import minute_of
from ..models import FinishedTally
from .transactions import in_transaction

# Minutes kept one row each: the dashboard's hour of throughput, and a margin.
WINDOW = timedelta(minutes=120)
# Tally rows merged at most per call; a bigger backlog takes a few calls.
BATCH = 10_000


class _Raced(Exception):
    """Another process merged some of the same rows first."""


def compact_tallies(alias: str, backend_alias: str, *, now: datetime | None = None) -> int:
    """Merge ``backend_alias``'s tally rows of ended minutes; returns how many
    rows it removed (0 when there was nothing to merge, or when another
    dispatcher was merging the same rows: its merge stands, this one rolls back)."""
    now = now or timezone.now()
    current = minute_of(now)
    window_start = current - WINDOW
    driver = get_driver(alias)

    def merge() -> int:
        rows = FinishedTally.objects.using(alias).filter(
            Q(minute__lt=current) | Q(minute__isnull=True), backend_alias=backend_alias
        )
        if driver.has_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        found = list(
            rows.order_by("pk").values_list("pk", "queue_name", "status", "minute", "count")[:BATCH]
        )
        groups: dict[tuple[str, str, datetime | None], list[tuple[int, datetime | None, int]]]
        groups = defaultdict(list)
        for pk, queue, status, minute, count in found:
            bucket = None if minute is None or minute < window_start else minute
            groups[(queue, status, bucket)].append((pk, minute, count))
        doomed: list[int] = []
        merged: list[FinishedTally] = []
        for (queue, status, bucket), members in groups.items():
            if len(members) == 1 and members[0][1] == bucket:
                continue
            doomed += [pk for pk, _, _ in members]
            merged.append(
                FinishedTally(
                    backend_alias=backend_alias,
                    queue_name=queue,
                    status=status,
                    minute=bucket,
                    count=sum(count for _, _, count in members),
                )
            )
        if not doomed:
            return 0
        deleted = 0
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            deleted += FinishedTally.objects.using(alias).filter(pk__in=chunk)._raw_delete(alias)
        if deleted != len(doomed):
            # Without row locks (SQLite) two mergers can read the same rows:
            # adding this one's sums too would count them twice.
            raise _Raced
        FinishedTally.objects.using(alias).bulk_create(merged)
        return len(doomed) - len(merged)

    try:
        return in_transaction(alias, merge)
    except _Raced:
        return 0
