"""Keeping the finished-jobs tally small: each ended minute's rows merged into
one, and minutes older than the window into one row per queue and status.

The runtime adds a tally row per batch it finishes (see ``dj_queue.db.tallies``);
merging never changes a sum, so readers may read at any moment.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple

from django.db.models import Count, Q
from django.utils import timezone

from ..db import get_driver
from ..db.tallies import minute_of
from ..models import FinishedTally
from .transactions import in_transaction

# Minutes kept one row each: the dashboard's hour of throughput, and a margin.
WINDOW = timedelta(minutes=120)
# Buckets merged per transaction.
BUCKETS_PER_TRANSACTION = 100


class _Raced(Exception):
    """Another process merged some of the same rows first."""


def compact_tallies(alias: str, backend_alias: str, *, now: datetime | None = None) -> int:
    """Merge ``backend_alias``'s tally rows of ended minutes; returns how many
    rows it removed. One grouped read finds the buckets that hold more than one
    row (or an old minute's row), then each batch of buckets is merged in a
    transaction of its own. A batch another dispatcher was merging at the same
    moment removes nothing: that merge stands, this one rolls back."""
    now = now or timezone.now()
    current = minute_of(now)
    window_start = current - WINDOW
    ended = FinishedTally.objects.using(alias).filter(
        Q(minute__lt=current) | Q(minute__isnull=True), backend_alias=backend_alias
    )
    rows_per_bucket: dict[Bucket, int] = defaultdict(int)
    misplaced: set[Bucket] = set()
    for row in ended.values("queue_name", "status", "minute").annotate(rows=Count("pk")).order_by():
        minute = row["minute"]
        bucket = Bucket(row["queue_name"], row["status"], _bucket_minute(minute, window_start))
        rows_per_bucket[bucket] += row["rows"]
        if minute != bucket.minute:
            misplaced.add(bucket)
    todo = sorted(
        (bucket for bucket, rows in rows_per_bucket.items() if rows > 1 or bucket in misplaced),
        key=lambda bucket: (bucket.queue_name, bucket.status, bucket.minute or current),
    )
    removed = 0
    for start in range(0, len(todo), BUCKETS_PER_TRANSACTION):
        chunk = todo[start : start + BUCKETS_PER_TRANSACTION]
        try:
            removed += in_transaction(
                alias, partial(_merge, alias, backend_alias, chunk, window_start)
            )
        except _Raced:
            continue
    return removed


class Bucket(NamedTuple):
    """What one merged row holds: a queue's jobs of one status in one minute
    (``minute`` None: every minute before the window)."""

    queue_name: str
    status: str
    minute: datetime | None


def _bucket_minute(minute: datetime | None, window_start: datetime) -> datetime | None:
    return None if minute is None or minute < window_start else minute


def _merge(alias: str, backend_alias: str, buckets: list[Bucket], window_start: datetime) -> int:
    """Replace the rows of ``buckets`` by one row each; how many rows went."""
    driver = get_driver(alias)
    matches = Q()
    for bucket in buckets:
        where = Q(queue_name=bucket.queue_name, status=bucket.status)
        if bucket.minute is None:
            where &= Q(minute__lt=window_start) | Q(minute__isnull=True)
        else:
            where &= Q(minute=bucket.minute)
        matches |= where
    rows = FinishedTally.objects.using(alias).filter(matches, backend_alias=backend_alias)
    if driver.has_skip_locked:
        # Rows another merger holds are left to it.
        rows = rows.select_for_update(skip_locked=True)
    sums: dict[Bucket, int] = defaultdict(int)
    doomed: list[int] = []
    for pk, queue, status, minute, count in rows.values_list(
        "pk", "queue_name", "status", "minute", "count"
    ):
        sums[Bucket(queue, status, _bucket_minute(minute, window_start))] += count
        doomed.append(pk)
    deleted = 0
    for start in range(0, len(doomed), 500):
        chunk = doomed[start : start + 500]
        deleted += FinishedTally.objects.using(alias).filter(pk__in=chunk)._raw_delete(alias)
    if deleted != len(doomed):
        # Without row locks (SQLite) two mergers can read the same rows:
        # adding this one's sums too would count them twice.
        raise _Raced
    FinishedTally.objects.using(alias).bulk_create(
        FinishedTally(
            backend_alias=backend_alias,
            queue_name=bucket.queue_name,
            status=bucket.status,
            minute=bucket.minute,
            count=total,
        )
        for bucket, total in sums.items()
    )
    return len(doomed) - len(sums)
