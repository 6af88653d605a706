"""Per-queue figures, every one a bounded read of an index.

No figure counts a whole table: each count reads at most ``cap + 1`` index
entries of one queue, the oldest ready job is one probe of the queue's
``(queue_name, created_at)`` index, and the queue names are found by skipping
through the indexes that start with ``queue_name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import Model
from django.utils import timezone

from ..db import get_driver
from ..models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    Pause,
    ReadyExecution,
    ScheduledExecution,
)
from .figures import COUNT_CAP, BoundedCount, QueueSummary

# Queues shown at most (sorted by name); a deployment with more has bigger problems.
MAX_QUEUES = 200
# Tables whose rows name their queue, each with an index starting with it.
_NAMED_TABLES = (ReadyExecution, ScheduledExecution, BlockedExecution, FailedExecution, Pause)


def queue_names(alias: str, *, limit: int = MAX_QUEUES) -> list[str]:
    """Queues with ready, scheduled, blocked or failed jobs, or a pause: the
    first ``limit`` by name."""
    driver = get_driver(alias)
    names: set[str] = set()
    with connections[alias].cursor() as cursor:
        for model in _NAMED_TABLES:
            sql, params = driver.distinct_names_statement(driver.q(model._meta.db_table), limit)
            cursor.execute(sql, params)
            names.update(row[0] for row in cursor.fetchall())
    return sorted(names)[:limit]


def _per_queue(
    alias: str, model: type[Model], names: Sequence[str], query: str, extra: Sequence[Any] = ()
) -> list[tuple[str, Any]]:
    """One statement: ``query`` once per queue in ``names``, UNION ALL. In
    ``query``, ``{table}`` is ``model``'s table and ``{queue}`` the condition on
    the queue, after whose parameters come ``extra``; each part selects the
    queue's position, then one value. Returns (name, value) per row."""
    driver = get_driver(alias)
    table, column = driver.q(model._meta.db_table), driver.q("queue_name")
    parts: list[str] = []
    params: list[Any] = []
    for index, name in enumerate(names):
        condition, condition_params = driver.listed_queue_equals(column, name)
        parts.append(query.format(table=table, queue=condition, index=index))
        params += [index, *condition_params, *extra]
    with connections[alias].cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(names[int(position)], value) for position, value in cursor.fetchall()]


def bounded_counts(
    alias: str, model: type[Model], names: Sequence[str], *, cap: int = COUNT_CAP
) -> dict[str, BoundedCount]:
    """Rows of ``model`` per queue in ``names``, each count stopping at ``cap``:
    one statement, a ``LIMIT``ed index read per queue."""
    if not names:
        return {}
    # The LIMIT inside the derived table is what stops each index read.
    query = (
        "SELECT %s, COUNT(*) FROM (SELECT 1 AS one FROM {table} WHERE {queue} LIMIT %s) AS s{index}"
    )
    counted = dict(_per_queue(alias, model, names, query, [cap + 1]))
    return {name: _capped(int(counted.get(name, 0)), cap) for name in names}


def running_counts(alias: str, *, cap: int = COUNT_CAP) -> tuple[dict[str, int], bool]:
    """Claimed jobs per queue, and whether the count stopped at ``cap``. Claims
    do not copy their job's queue (there are only as many as threads are busy,
    plus prefetch), so at most ``cap + 1`` claims are read with their jobs;
    past that every queue's figure is a lower bound."""
    driver = get_driver(alias)
    q = driver.q
    sql = (
        f"SELECT j.{q('queue_name')}, COUNT(*) FROM (SELECT {q('job_id')} FROM "
        f"{q(ClaimedExecution._meta.db_table)} LIMIT %s) AS c "
        f"JOIN {q(Job._meta.db_table)} AS j ON j.{q('id')} = c.{q('job_id')} "
        f"GROUP BY j.{q('queue_name')}"
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [cap + 1])
        rows = cursor.fetchall()
    return {name: int(count) for name, count in rows}, sum(count for _, count in rows) > cap


def oldest_ready(alias: str, names: Sequence[str]) -> dict[str, datetime | None]:
    """When the oldest ready job of each queue became ready: one index probe each."""
    if not names:
        return {}
    oldest = f"MIN({get_driver(alias).q('created_at')})"
    query = "SELECT %s, " + oldest + " FROM {table} WHERE {queue}"
    rows = _per_queue(alias, ReadyExecution, names, query)
    # Raw rows come back as the vendor sends them (text on SQLite, naive on
    # MySQL): the column's own converters make them aware datetimes.
    column = ReadyExecution._meta.get_field("created_at").cached_col
    connection = connections[alias]
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    found: dict[str, datetime | None] = {}
    for name, value in rows:
        for converter in converters:
            value = converter(value, column, connection)
        found[name] = value
    return found


def paused_names(alias: str) -> set[str]:
    return set(Pause.objects.using(alias).values_list("queue_name", flat=True)[: MAX_QUEUES * 5])


def queue_summaries(
    alias: str,
    *,
    names: Sequence[str] | None = None,
    also: Iterable[str] = (),
    cap: int = COUNT_CAP,
    now: datetime | None = None,
) -> tuple[QueueSummary, ...]:
    """Every queue's figures (or those of ``names``), sorted by name; queues in
    ``also`` are listed even when nothing waits in them (the snapshot passes the
    queues that finished jobs, so that a drained queue reads 0, not gone)."""
    now = now or timezone.now()
    running, running_capped = running_counts(alias, cap=cap)
    if names is None:
        # A queue whose every job is running has rows only in the claims.
        names = sorted(set(queue_names(alias)) | set(running) | set(also))[:MAX_QUEUES]
    names = list(names)
    ready = bounded_counts(alias, ReadyExecution, names, cap=cap)
    scheduled = bounded_counts(alias, ScheduledExecution, names, cap=cap)
    blocked = bounded_counts(alias, BlockedExecution, names, cap=cap)
    failed = bounded_counts(alias, FailedExecution, names, cap=cap)
    oldest = oldest_ready(alias, names)
    paused = paused_names(alias)
    return tuple(
        QueueSummary(
            name=name,
            ready=ready[name],
            scheduled=scheduled[name],
            running=BoundedCount(running.get(name, 0), running_capped),
            blocked=blocked[name],
            failed=failed[name],
            latency=_latency(oldest.get(name), now),
            paused=name in paused,
        )
        for name in names
    )


def _latency(oldest: datetime | None, now: datetime) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def _capped(count: int, cap: int) -> BoundedCount:
    return BoundedCount(cap, True) if count > cap else BoundedCount(count)
