import uuid
from collections.abc import Sequence
from typing import Any

from django.db.backends.utils import CursorWrapper
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from .base import Driver, ReadyRow, _like_prefix

# ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
_TRANSIENT_CODES = {1213, 1205}


class MySQLDriver(Driver):
    """MySQL 8+ and MariaDB 10.6+.

    MySQL cannot delete from a table it reads in a subquery of the same
    statement, so taking rows is a locking SELECT followed by a DELETE by
    primary key.
    """

    vendor = "mysql"
    _claim_index: str | None = None
    # Django connects with CLIENT_FOUND_ROWS: a duplicate key "updated" to itself
    # counts as a row, like an insert.
    reports_inserted_rows = False

    # Text columns usually have a case-insensitive, space-padded collation, under
    # which "Email" and "email " would be the queue "email". Each comparison is
    # made twice: as written, so the index serves it, then on the bytes, exactly.
    def queue_equals(self, column: str, name: str) -> tuple[str, list[Any]]:
        return f"{column} = %s AND BINARY {column} = BINARY %s", [name, name]

    def queue_prefix(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        pattern = _like_prefix(prefix)
        return (
            f"{column} LIKE %s ESCAPE '!' AND BINARY {column} LIKE BINARY %s ESCAPE '!'",
            [pattern, pattern],
        )

    def listed_queue_equals(self, column: str, name: str) -> tuple[str, list[Any]]:
        # Listing names skips through the index under the column's collation,
        # which folds case and trailing spaces: "Reports" and "reports" are
        # listed once. Counting under that listed name with the collation's own
        # equality keeps the other spelling's jobs in the figures, not hidden.
        return f"{column} = %s", [name]

    def queue_name_filters(self, name: str) -> list[Any]:
        exact = RawSQL(
            f"BINARY {self.q('queue_name')} = BINARY %s", [name], output_field=BooleanField()
        )
        return [Q(queue_name=name), exact]

    def queue_not_paused(self, column: str) -> str:
        return (
            f"BINARY {column} NOT IN (SELECT BINARY {self.q('queue_name')} FROM {self.pause_table})"
        )

    def if_taken_do_nothing(self, unique: str) -> str:
        # A no-op update instead of INSERT IGNORE, which would also silence
        # data errors (truncation) as warnings.
        return f"ON DUPLICATE KEY UPDATE {self.q(unique)} = {self.q(unique)}"

    def held_by_process(self) -> str:
        # "+ 0" keeps the optimizer off the process_id index: scanning it would
        # lock every claim row of the process, so two threads of one worker
        # finishing jobs at once would deadlock on each other's rows.
        return f"{self.q('process_id')} + 0 = %s"

    def release_claims(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID], process_id: int
    ) -> set[uuid.UUID]:
        """Lock the claims through the unique job id index, named in the query:
        on a table as small as the claims, the optimizer would rather scan it
        all, locking every other worker's claim rows until the commit (a
        deadlock with their own completions). Then delete them by primary key."""
        q = self.q
        cursor.execute(
            f"SELECT {q('id')}, {q('job_id')} FROM {self.claimed_table} "
            f"FORCE INDEX ({q(self._claim_job_index(cursor))}) "
            f"WHERE {q('job_id')} IN ({self.placeholders(len(job_ids))}) "
            f"AND {self.held_by_process()} FOR UPDATE",
            [*(self.job_id_param(job_id) for job_id in job_ids), process_id],
        )
        rows = cursor.fetchall()
        if rows:
            cursor.execute(
                f"DELETE FROM {self.claimed_table} WHERE {q('id')} IN "
                f"({self.placeholders(len(rows))}){self.by_ids(len(rows))}",
                [row[0] for row in rows],
            )
        return {self.to_uuid(row[1]) for row in rows}

    def _take(
        self,
        cursor: CursorWrapper,
        table: str,
        where: str,
        params: list[Any],
        order: str,
        limit: int,
        skip_locked: bool,
    ) -> list[ReadyRow]:
        """Choose the rows with a plain read, then lock them by primary key,
        skipping those another claim holds. A locking read through the queue
        order index would also lock index entries of rows it skips; their
        holders' DELETEs then wait on it while it waits on them (InnoDB's
        deadlock between concurrent claims)."""
        if not (skip_locked and self.has_skip_locked):
            return super()._take(cursor, table, where, params, order, limit, skip_locked)
        q = self.q
        cursor.execute(
            f"SELECT {q('id')} FROM {table} WHERE {where} ORDER BY {order} LIMIT %s",
            [*params, limit],
        )
        chosen = [row[0] for row in cursor.fetchall()]
        if not chosen:
            return []
        cursor.execute(
            f"SELECT {q('id')}, {q('job_id')}, {q('queue_name')}, {q('priority')} "
            f"FROM {table} WHERE {q('id')} IN ({self.placeholders(len(chosen))})"
            f"{self.by_ids(len(chosen))} FOR UPDATE SKIP LOCKED",
            chosen,
        )
        return self._delete_taken(cursor, table, cursor.fetchall())

    def by_ids(self, count: int) -> str:
        # A locking read, UPDATE or DELETE by a list of ids, on a table that
        # holds few more rows than that (the claims, the ready jobs of a drained
        # queue), is planned as a scan of the whole table, which locks every row
        # until the commit: other workers' rows too, hence waits and deadlocks.
        # ORDER BY and LIMIT make it a range on the primary key (an index hint
        # does not), locking only those.
        return f" ORDER BY {self.q('id')} LIMIT {int(count)}"

    def _claim_job_index(self, cursor: CursorWrapper) -> str:
        """The name of the claims' unique index on ``job_id``, read once."""
        if self._claim_index is None:
            from ..models import ClaimedExecution

            constraints = self.connection.introspection.get_constraints(
                cursor, ClaimedExecution._meta.db_table
            )
            self._claim_index = next(
                name
                for name, constraint in constraints.items()
                if constraint["columns"] == ["job_id"] and constraint["unique"]
            )
        return self._claim_index

    def json_append(self, column: str) -> str:
        return f"JSON_ARRAY_APPEND({column}, '$', %s)"

    def is_transient(self, exc: BaseException) -> bool:
        cause = exc.__cause__ or exc
        args: tuple[object, ...] = getattr(cause, "args", ())
        return bool(args) and args[0] in _TRANSIENT_CODES
