"""The SQL that tallies finished jobs, inside the transaction that ends them.

Each batch of jobs ended together adds one ``dj_queue_finished_tally`` row per
backend and queue: an INSERT, never an UPDATE of a shared counter row, so that
workers finishing jobs at the same moment never wait on each other's locks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.backends.utils import CursorWrapper

SUCCEEDED = "succeeded"
FAILED = "failed"
TALLY_COLUMNS = ("backend_alias", "queue_name", "status", "minute", "count")


def minute_of(moment: datetime) -> datetime:
    """The first second of ``moment``'s minute: a tally row's bucket."""
    return moment.replace(second=0, microsecond=0)


class TallyStatements:
    """Mixed into ``Driver``: what tallying finished jobs says to the database."""

    # Provided by Driver (declared here for the type checker only).
    q: Any
    job_table: str
    tally_table: str
    datetime_param: Callable[[datetime], Any]
    job_id_param: Callable[[uuid.UUID], Any]
    placeholders: Callable[[int], str]
    insert_rows: Callable[[CursorWrapper, str, Sequence[str], Sequence[Sequence[Any]]], None]

    def tally(
        self,
        cursor: CursorWrapper,
        status: str,
        ended_at: datetime,
        counts: Mapping[tuple[str, str], int],
    ) -> None:
        """Add ``counts`` ((backend alias, queue) → jobs) ended at ``ended_at``."""
        minute = self.datetime_param(minute_of(ended_at))
        rows = [
            (backend, queue, status, minute, count)
            for (backend, queue), count in sorted(counts.items())
            if count
        ]
        if rows:
            self.insert_rows(cursor, self.tally_table, TALLY_COLUMNS, rows)

    def tally_succeeded(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID], ended_at: datetime
    ) -> None:
        """Tally ``job_ids`` as succeeded: read their backends and queues (a
        plain read, which takes no lock on MySQL) before they are updated or
        deleted, in the same transaction."""
        if not job_ids:
            return
        q = self.q
        cursor.execute(
            f"SELECT {q('backend_alias')}, {q('queue_name')}, COUNT(*) FROM {self.job_table} "
            f"WHERE {q('id')} IN ({self.placeholders(len(job_ids))}) "
            f"GROUP BY {q('backend_alias')}, {q('queue_name')}",
            [self.job_id_param(job_id) for job_id in job_ids],
        )
        counts = {(backend, queue): count for backend, queue, count in cursor.fetchall()}
        self.tally(cursor, SUCCEEDED, ended_at, counts)

    def tally_cte(self, source: str, ended_at: datetime) -> tuple[str, list[Any]]:
        """A data-modifying CTE (PostgreSQL) tallying the rows of the CTE
        ``source`` (which returns ``backend_alias`` and ``queue_name``) as
        succeeded; PostgreSQL runs it even though nothing reads it."""
        q = self.q
        names = ", ".join(q(column) for column in TALLY_COLUMNS)
        sql = (
            f"tallied AS (INSERT INTO {self.tally_table} ({names}) "
            f"SELECT {q('backend_alias')}, {q('queue_name')}, %s, %s, count(*) FROM {source} "
            f"GROUP BY {q('backend_alias')}, {q('queue_name')})"
        )
        return sql, [SUCCEEDED, self.datetime_param(minute_of(ended_at))]
