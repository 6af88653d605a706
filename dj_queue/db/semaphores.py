"""The SQL of concurrency limits: semaphore rows and blocked jobs.

A semaphore row holds the free slots of one key. Every transition that takes or
gives back a slot first locks that row (``FOR UPDATE``; SQLite has one writer
anyway) and only then reads or writes the key's blocked rows, so transitions of
one key queue up behind each other in one order and cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.backends.utils import CursorWrapper

if TYPE_CHECKING:
    from .values import ReadyRow


@dataclass(frozen=True, slots=True)
class LockedSemaphore:
    row_id: int
    value: int  # free slots
    expired: bool


@dataclass(frozen=True, slots=True)
class BlockedRow:
    """A job waiting for a slot of ``key``."""

    job_id: uuid.UUID
    queue_name: str
    priority: int
    key: str
    expires_at: datetime


class SemaphoreStatements:
    """Mixed into ``Driver``: what concurrency limits say to the database."""

    # Provided by Driver (declared here for the type checker only).
    q: Any
    connection: Any
    ready_table: str
    job_table: str
    blocked_table: str
    semaphore_table: str
    datetime_param: Callable[[datetime], Any]
    job_id_param: Callable[[uuid.UUID], Any]
    to_uuid: Callable[[Any], uuid.UUID]
    lock_clause: Callable[[bool], str]
    _take: Callable[..., list[ReadyRow]]
    insert_rows: Callable[[CursorWrapper, str, Sequence[str], Sequence[Sequence[Any]]], None]

    def insert_missing_statement(self, table: str, columns: Sequence[str], unique: str) -> str:
        """INSERT of one row that does nothing when ``unique`` is already taken."""
        names = ", ".join(self.q(column) for column in columns)
        values = ", ".join(["%s"] * len(columns))
        return f"INSERT INTO {table} ({names}) VALUES ({values}) {self.if_taken_do_nothing(unique)}"

    def if_taken_do_nothing(self, unique: str) -> str:
        """The clause that turns an INSERT taken by ``unique`` into a no-op."""
        return f"ON CONFLICT ({self.q(unique)}) DO NOTHING"

    # -- semaphores -------------------------------------------------------------
    def lock_semaphore(
        self, cursor: CursorWrapper, key: str, now: datetime
    ) -> LockedSemaphore | None:
        q = self.q
        cursor.execute(
            f"SELECT {q('id')}, {q('value')}, "
            f"CASE WHEN {q('expires_at')} < %s THEN 1 ELSE 0 END FROM {self.semaphore_table} "
            f"WHERE {q('key')} = %s{self.lock_clause(False)}",
            [self.datetime_param(now), key],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        return LockedSemaphore(row[0], row[1], bool(row[2]))

    def create_semaphore(
        self, cursor: CursorWrapper, key: str, value: int, expires_at: datetime, now: datetime
    ) -> None:
        """Insert the key's row unless another transaction just did."""
        when = self.datetime_param(now)
        cursor.execute(
            self.insert_missing_statement(
                self.semaphore_table,
                ["key", "value", "expires_at", "created_at", "updated_at"],
                "key",
            ),
            [key, value, self.datetime_param(expires_at), when, when],
        )

    def set_semaphore(
        self, cursor: CursorWrapper, row_id: int, value: int, expires_at: datetime, now: datetime
    ) -> None:
        q = self.q
        cursor.execute(
            f"UPDATE {self.semaphore_table} SET {q('value')} = %s, {q('expires_at')} = %s, "
            f"{q('updated_at')} = %s WHERE {q('id')} = %s",
            [value, self.datetime_param(expires_at), self.datetime_param(now), row_id],
        )

    def set_semaphore_value(
        self, cursor: CursorWrapper, row_id: int, value: int, now: datetime
    ) -> None:
        q = self.q
        cursor.execute(
            f"UPDATE {self.semaphore_table} SET {q('value')} = %s, {q('updated_at')} = %s "
            f"WHERE {q('id')} = %s",
            [value, self.datetime_param(now), row_id],
        )

    def delete_semaphore(self, cursor: CursorWrapper, row_id: int) -> None:
        cursor.execute(f"DELETE FROM {self.semaphore_table} WHERE {self.q('id')} = %s", [row_id])

    def expired_semaphore_keys(self, cursor: CursorWrapper, now: datetime, limit: int) -> list[str]:
        q = self.q
        cursor.execute(
            f"SELECT {q('key')} FROM {self.semaphore_table} WHERE {q('expires_at')} < %s "
            f"ORDER BY {q('expires_at')} LIMIT %s",
            [self.datetime_param(now), limit],
        )
        return [row[0] for row in cursor.fetchall()]

    # -- blocked jobs -------------------------------------------------------------
    def insert_blocked(
        self, cursor: CursorWrapper, rows: Sequence[BlockedRow], now: datetime
    ) -> None:
        when = self.datetime_param(now)
        self.insert_rows(
            cursor,
            self.blocked_table,
            ["job_id", "queue_name", "priority", "concurrency_key", "expires_at", "created_at"],
            [
                (
                    self.job_id_param(row.job_id),
                    row.queue_name,
                    row.priority,
                    row.key,
                    self.datetime_param(row.expires_at),
                    when,
                )
                for row in rows
            ],
        )

    def take_blocked(self, cursor: CursorWrapper, key: str, limit: int) -> list[ReadyRow]:
        """Delete and return up to ``limit`` blocked rows of ``key``, best
        priority first, then oldest. The caller holds the key's semaphore lock."""
        q = self.q
        order = f"{q('priority')} DESC, {q('id')} ASC"
        where = f"{q('concurrency_key')} = %s"
        return self._take(cursor, self.blocked_table, where, [key], order, limit, False)

    def take_blocked_jobs(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID]
    ) -> list[ReadyRow]:
        placeholders = ", ".join(["%s"] * len(job_ids))
        where = f"{self.q('job_id')} IN ({placeholders})"
        params = [self.job_id_param(job_id) for job_id in job_ids]
        return self._take(
            cursor, self.blocked_table, where, params, self.q("id"), len(job_ids), False
        )

    def blocked_limit(self, cursor: CursorWrapper, key: str) -> tuple[int, float] | None:
        """(limit, duration) declared by the first blocked job of ``key``, if any."""
        q = self.q
        cursor.execute(
            f"SELECT j.{q('concurrency_limit')}, j.{q('concurrency_duration')} "
            f"FROM {self.blocked_table} b JOIN {self.job_table} j ON j.{q('id')} = b.{q('job_id')} "
            f"WHERE b.{q('concurrency_key')} = %s ORDER BY b.{q('priority')} DESC, b.{q('id')} "
            "LIMIT 1",
            [key],
        )
        row = cursor.fetchone()
        return None if row is None else (row[0] or 1, row[1] or 0.0)

    def expired_blocked_keys(self, cursor: CursorWrapper, now: datetime, limit: int) -> list[str]:
        q = self.q
        cursor.execute(
            f"SELECT DISTINCT {q('concurrency_key')} FROM {self.blocked_table} "
            f"WHERE {q('expires_at')} < %s LIMIT %s",
            [self.datetime_param(now), limit],
        )
        return [row[0] for row in cursor.fetchall()]

    def extend_blocked(
        self, cursor: CursorWrapper, key: str, now: datetime, expires_at: datetime
    ) -> None:
        """Push back the re-check of ``key``'s expired blocked rows."""
        q = self.q
        cursor.execute(
            f"UPDATE {self.blocked_table} SET {q('expires_at')} = %s "
            f"WHERE {q('concurrency_key')} = %s AND {q('expires_at')} < %s",
            [self.datetime_param(expires_at), key, self.datetime_param(now)],
        )

    def insert_ready(self, cursor: CursorWrapper, rows: Sequence[ReadyRow], now: datetime) -> None:
        when = self.datetime_param(now)
        self.insert_rows(
            cursor,
            self.ready_table,
            ["job_id", "queue_name", "priority", "created_at"],
            [(self.job_id_param(row.job_id), row.queue_name, row.priority, when) for row in rows],
        )

    def job_limits(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, int, float, str]]:
        """The stored concurrency rule (key, limit, duration, on_conflict) of
        those of ``job_ids`` that have one."""
        if not job_ids:
            return {}
        q = self.q
        placeholders = ", ".join(["%s"] * len(job_ids))
        cursor.execute(
            f"SELECT {q('id')}, {q('concurrency_key')}, {q('concurrency_limit')}, "
            f"{q('concurrency_duration')}, {q('concurrency_on_conflict')} FROM {self.job_table} "
            f"WHERE {q('id')} IN ({placeholders}) AND {q('concurrency_key')} IS NOT NULL",
            [self.job_id_param(job_id) for job_id in job_ids],
        )
        return {self.to_uuid(row[0]): tuple(row[1:]) for row in cursor.fetchall()}
