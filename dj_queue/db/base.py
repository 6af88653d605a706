"""Vendor SQL behind one interface.

Everything dj_queue says to a database in raw SQL lives in a ``Driver``: the
operations layer asks for a transition ("take up to n ready rows for this queue
selector") and the driver for the connection's vendor answers with the fewest
statements that vendor allows. Identifiers are quoted; values are parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Q

from .reads import ReadStatements
from .semaphores import SemaphoreStatements
from .tallies import TallyStatements
from .values import ClaimRequest, Completion, CompletionBatch, JobRows, ReadyRow

__all__ = ["NOTIFY_CHANNEL", "ClaimRequest", "Completion", "CompletionBatch", "Driver", "ReadyRow"]

# One LISTEN/NOTIFY channel for every queue: the payload names the queue. A
# fixed name stays within PostgreSQL's 63-byte limit whatever the queue is called.
NOTIFY_CHANNEL = "dj_queue_ready"


class Driver(SemaphoreStatements, TallyStatements, ReadStatements):
    vendor = "base"
    # DELETE … RETURNING, so taking rows is one statement.
    delete_returning = False
    # Claims, completions and enqueues as one statement each (see the PostgreSQL driver).
    single_statement_transitions = False
    # LISTEN/NOTIFY, to wake idle workers at once.
    supports_notify = False
    # UPDATE … RETURNING.
    update_returning = False

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.has_skip_locked = bool(connection.features.has_select_for_update_skip_locked)
        # Imported here: models import nothing from the drivers, and drivers are
        # created only after apps are ready.
        from ..models import (
            BlockedExecution,
            ClaimedExecution,
            FinishedTally,
            Job,
            Pause,
            ReadyExecution,
            ScheduledExecution,
            Semaphore,
        )

        quote = connection.ops.quote_name
        self.q = quote
        self.job_table = quote(Job._meta.db_table)
        self.ready_table = quote(ReadyExecution._meta.db_table)
        self.scheduled_table = quote(ScheduledExecution._meta.db_table)
        self.pause_table = quote(Pause._meta.db_table)
        self.claimed_table = quote(ClaimedExecution._meta.db_table)
        self.blocked_table = quote(BlockedExecution._meta.db_table)
        self.semaphore_table = quote(Semaphore._meta.db_table)
        self.tally_table = quote(FinishedTally._meta.db_table)
        self._job_pk = Job._meta.pk
        self._datetime_field = Job._meta.get_field("enqueued_at")
        self._json_field = Job._meta.get_field("return_value")
        self._job_fields = Job._meta.concrete_fields
        self.job_columns = [str(field.column) for field in self._job_fields]
        self.job_column_list = ", ".join(quote(column) for column in self.job_columns)
        self._job_rows: JobRows | None = None

    # -- values -----------------------------------------------------------
    def job_id_param(self, job_id: uuid.UUID) -> Any:
        assert self._job_pk is not None
        return self._job_pk.get_db_prep_value(job_id, self.connection)

    def datetime_param(self, value: datetime) -> Any:
        return self._datetime_field.get_db_prep_value(value, self.connection)

    def jobs_from_rows(self, alias: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Job instances from raw rows holding ``job_columns`` first, converted
        the way the ORM converts them (JSON decoded, and so on)."""
        if self._job_rows is None:
            self._job_rows = JobRows(self.connection, self._job_fields)
        return self._job_rows.jobs(alias, rows)

    def json_param(self, value: Any) -> Any:
        return self._json_field.get_db_prep_save(value, self.connection)

    @staticmethod
    def to_uuid(value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    @staticmethod
    def placeholders(count: int) -> str:
        return ", ".join(["%s"] * count)

    def by_ids(self, count: int) -> str:
        """What follows ``WHERE id IN (…count ids…)`` in an UPDATE or DELETE
        so that the database goes straight to those rows (see MySQL)."""
        return ""

    # -- queue selectors ----------------------------------------------------
    def queue_equals(self, column: str, name: str) -> tuple[str, list[Any]]:
        return f"{column} = %s", [name]

    def queue_prefix(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        return f"{column} LIKE %s ESCAPE '!'", [_like_prefix(prefix)]

    def queue_not_paused(self, column: str) -> str:
        return f"{column} NOT IN (SELECT {self.q('queue_name')} FROM {self.pause_table})"

    def queue_name_filters(self, name: str) -> list[Any]:
        """ORM filter arguments matching the queue called exactly ``name``."""
        return [Q(queue_name=name)]

    def selector_condition(self, selector: str) -> tuple[str, list[Any]]:
        column = self.q("queue_name")
        if selector == "*":
            return "1 = 1", []
        if selector.endswith("*"):
            return self.queue_prefix(column, selector[:-1])
        return self.queue_equals(column, selector)

    def lock_clause(self, skip_locked: bool) -> str:
        if not self.connection.features.has_select_for_update:
            return ""
        if skip_locked and self.has_skip_locked:
            return " FOR UPDATE SKIP LOCKED"
        return " FOR UPDATE"

    # -- probes -------------------------------------------------------------------
    # Where a write transaction is costly even when it finds nothing (SQLite:
    # it takes the one write lock), a read first tells whether to start one.
    probe_before_write = False

    def any_ready(self, cursor: CursorWrapper, selectors: Sequence[str]) -> bool:
        queue = self.q("queue_name")
        for selector in selectors:
            condition, params = self.selector_condition(selector)
            cursor.execute(
                f"SELECT 1 FROM {self.ready_table} WHERE {condition} AND "
                f"{self.queue_not_paused(queue)} LIMIT 1",
                params,
            )
            if cursor.fetchone() is not None:
                return True
        return False

    def any_due(self, cursor: CursorWrapper, now: datetime) -> bool:
        cursor.execute(
            f"SELECT 1 FROM {self.scheduled_table} WHERE {self.q('scheduled_at')} <= %s LIMIT 1",
            [self.datetime_param(now)],
        )
        return cursor.fetchone() is not None

    # -- transitions ----------------------------------------------------------
    def take_ready(
        self, cursor: CursorWrapper, selector: str, limit: int, skip_locked: bool
    ) -> list[ReadyRow]:
        """Delete and return up to ``limit`` ready rows matching ``selector``,
        skipping paused queues, best priority first, then oldest."""
        condition, params = self.selector_condition(selector)
        queue = self.q("queue_name")
        where = f"{condition} AND {self.queue_not_paused(queue)}"
        order = f"{self.q('priority')} DESC, {self.q('id')} ASC"
        return self._take(cursor, self.ready_table, where, params, order, limit, skip_locked)

    def take_due_scheduled(
        self, cursor: CursorWrapper, now: datetime, limit: int, skip_locked: bool
    ) -> list[ReadyRow]:
        """Delete and return up to ``limit`` scheduled rows due at ``now``."""
        where = f"{self.q('scheduled_at')} <= %s"
        order = f"{self.q('scheduled_at')} ASC, {self.q('priority')} DESC, {self.q('id')} ASC"
        return self._take(
            cursor,
            self.scheduled_table,
            where,
            [self.datetime_param(now)],
            order,
            limit,
            skip_locked,
        )

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
        q = self.q
        columns = f"{q('id')}, {q('job_id')}, {q('queue_name')}, {q('priority')}"

        def select(selected: str) -> str:
            return (
                f"SELECT {selected} FROM {table} WHERE {where} ORDER BY {order} LIMIT %s"
                f"{self.lock_clause(skip_locked)}"
            )

        if self.delete_returning:
            cursor.execute(
                f"DELETE FROM {table} WHERE {q('id')} IN ({select(q('id'))}) RETURNING {columns}",
                [*params, limit],
            )
            rows = cursor.fetchall()
            return self._taken(rows)
        cursor.execute(select(columns), [*params, limit])
        return self._delete_taken(cursor, table, cursor.fetchall())

    def _delete_taken(
        self, cursor: CursorWrapper, table: str, rows: Sequence[Sequence[Any]]
    ) -> list[ReadyRow]:
        """Delete the locked rows (id, job id, queue, priority) just read; they
        are taken, in claim order."""
        if rows:
            cursor.execute(
                f"DELETE FROM {table} WHERE {self.q('id')} IN ({self.placeholders(len(rows))})"
                f"{self.by_ids(len(rows))}",
                [row[0] for row in rows],
            )
        return self._taken(rows)

    def _taken(self, rows: Sequence[Sequence[Any]]) -> list[ReadyRow]:
        taken = [ReadyRow(row[0], self.to_uuid(row[1]), row[2], row[3]) for row in rows]
        taken.sort(key=lambda row: (-row.priority, row.row_id))
        return taken

    # Whether an INSERT that did nothing on a taken key reports 0 rows (MySQL's
    # found-rows count says 1 either way).
    reports_inserted_rows = True

    # Rows per INSERT: within SQLite's 32,766 parameters per statement.
    insert_chunk = 500

    def enqueue(
        self,
        cursor: CursorWrapper,
        jobs: Sequence[Any],
        now: datetime,
        *,
        placement: Mapping[uuid.UUID, str] | None = None,
        blocked_until: Mapping[uuid.UUID, datetime] | None = None,
        written: AbstractSet[uuid.UUID] = frozenset(),
    ) -> None:
        """Insert ``jobs`` (NewJob calls) and their first state rows, in the
        caller's transaction, a few multi-row INSERTs per batch.

        A job goes to scheduled when ``run_after`` is still ahead of ``now`` and
        to ready otherwise, unless ``placement`` says "blocked" (a row waiting
        until ``blocked_until``), "finished" (no state row, finished now) or
        "omitted" (not written at all). Jobs in ``written`` have their row
        already (a unique job takes its key first) and get only their state row."""
        placement = placement or {}
        when = self.datetime_param(now)
        ready, scheduled, blocked = [], [], []
        kept = [job for job in jobs if placement.get(job.id) != "omitted"]
        for start in range(0, len(kept), self.insert_chunk):
            chunk = kept[start : start + self.insert_chunk]
            params = []
            rows_written = 0
            for job in chunk:
                place = placement.get(job.id)
                if job.id not in written:
                    params += self.job_row_params(job, finished=place == "finished", now=now)
                    rows_written += 1
                row = (self.job_id_param(job.id), job.queue_name, job.priority)
                if place == "finished":
                    continue
                if place == "blocked":
                    assert blocked_until is not None and job.concurrency_key is not None
                    expires = self.datetime_param(blocked_until[job.id])
                    blocked.append((*row, job.concurrency_key, expires, when))
                elif job.run_after is not None and job.run_after > now:
                    scheduled.append((*row, self.datetime_param(job.run_after), when))
                else:
                    ready.append((*row, when))
            if not rows_written:
                continue
            rows = ", ".join(["(" + self.placeholders(len(self._job_fields)) + ")"] * rows_written)
            cursor.execute(
                f"INSERT INTO {self.job_table} ({self.job_column_list}) VALUES {rows}", params
            )
        state = ["job_id", "queue_name", "priority"]
        self.insert_rows(cursor, self.ready_table, [*state, "created_at"], ready)
        self.insert_rows(
            cursor, self.scheduled_table, [*state, "scheduled_at", "created_at"], scheduled
        )
        blocked_columns = [*state, "concurrency_key", "expires_at", "created_at"]
        self.insert_rows(cursor, self.blocked_table, blocked_columns, blocked)

    def job_row_params(self, job: Any, *, finished: bool, now: datetime) -> list[Any]:
        """The INSERT parameters of a NewJob's row, in ``job_columns`` order; a
        job finished at once (discarded by its limit) holds no unique key."""
        defaults: dict[str, Any] = {"enqueued_at": now, "worker_ids": [], "errors": []}
        if finished:
            defaults["finished_at"] = now
        params = []
        for field in self._job_fields:
            value = getattr(job, field.name, defaults.get(field.name))
            if finished and field.name == "unique_key":
                value = None
            params.append(field.get_db_prep_save(value, self.connection))
        return params

    def insert_rows(
        self,
        cursor: CursorWrapper,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Multi-row INSERTs of ``rows`` (values already prepared for the database)."""
        names = ", ".join(self.q(column) for column in columns)
        for start in range(0, len(rows), self.insert_chunk):
            chunk = rows[start : start + self.insert_chunk]
            values = ", ".join(["(" + self.placeholders(len(columns)) + ")"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {values}",
                [value for row in chunk for value in row],
            )

    def record_claims(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID], process_id: int, now: datetime
    ) -> None:
        q = self.q
        rows = ", ".join(["(%s, %s, %s)"] * len(job_ids))
        when = self.datetime_param(now)
        cursor.execute(
            f"INSERT INTO {self.claimed_table} ({q('job_id')}, {q('process_id')}, "
            f"{q('created_at')}) VALUES {rows}",
            [
                value
                for job_id in job_ids
                for value in (self.job_id_param(job_id), process_id, when)
            ],
        )

    def record_attempt(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID], worker_id: str, now: datetime
    ) -> list[Any] | None:
        """Stamp the start of a new attempt on each job and append the worker's
        id. Where the database has ``UPDATE … RETURNING``, returns the jobs' rows
        (``job_columns``), sparing a SELECT; otherwise None."""
        q = self.q
        returning = f" RETURNING {self.job_column_list}" if self.update_returning else ""
        cursor.execute(
            f"UPDATE {self.job_table} SET "
            f"{q('started_at')} = COALESCE({q('started_at')}, %s), "
            f"{q('last_attempted_at')} = %s, "
            f"{q('worker_ids')} = {self.json_append(q('worker_ids'))} "
            f"WHERE {q('id')} IN ({self.placeholders(len(job_ids))})"
            f"{self.by_ids(len(job_ids))}{returning}",
            [
                self.datetime_param(now),
                self.datetime_param(now),
                worker_id,
                *(self.job_id_param(job_id) for job_id in job_ids),
            ],
        )
        return list(cursor.fetchall()) if returning else None

    def held_by_process(self) -> str:
        """The condition (one process id parameter) that a claim row found by its
        job id is held by that process."""
        return f"{self.q('process_id')} = %s"

    def claim_held_by(self) -> str:
        """WHERE clause (job id, process id parameters) of one claim row held by
        one process: the row is found through the unique job id index."""
        return f"{self.q('job_id')} = %s AND {self.held_by_process()}"

    def release_claim(self, cursor: CursorWrapper, job_id: uuid.UUID, process_id: int) -> bool:
        """Delete the claim if ``process_id`` still holds it; whether it did."""
        cursor.execute(
            f"DELETE FROM {self.claimed_table} WHERE {self.claim_held_by()}",
            [self.job_id_param(job_id), process_id],
        )
        return bool(cursor.rowcount)

    def release_claims(
        self, cursor: CursorWrapper, job_ids: Sequence[uuid.UUID], process_id: int
    ) -> set[uuid.UUID]:
        """Delete the claims among ``job_ids`` that ``process_id`` still holds,
        found through the unique job id index (never a range of the process's
        claims); the ids whose claims it held."""
        q = self.q
        where = f"{q('job_id')} IN ({self.placeholders(len(job_ids))}) AND {self.held_by_process()}"
        params = [*(self.job_id_param(job_id) for job_id in job_ids), process_id]
        if self.delete_returning:
            cursor.execute(
                f"DELETE FROM {self.claimed_table} WHERE {where} RETURNING {q('job_id')}", params
            )
            return {self.to_uuid(row[0]) for row in cursor.fetchall()}
        cursor.execute(
            f"SELECT {q('job_id')} FROM {self.claimed_table} WHERE {where} FOR UPDATE", params
        )
        held = [row[0] for row in cursor.fetchall()]
        if held:
            cursor.execute(
                f"DELETE FROM {self.claimed_table} WHERE {q('job_id')} IN "
                f"({self.placeholders(len(held))})",
                held,
            )
        return {self.to_uuid(job_id) for job_id in held}

    def complete_many(self, cursor: CursorWrapper, batch: CompletionBatch) -> set[uuid.UUID]:
        """Record a batch of successes inside a transaction: each job whose claim
        the process still holds is finished (or deleted), the others are left
        alone. Returns the ids recorded."""
        held = self.release_claims(cursor, batch.job_ids, batch.process_id)
        done = [(job_id, value) for job_id, value in batch.results if job_id in held]
        if not done:
            return held
        q = self.q
        self.tally_succeeded(cursor, [job_id for job_id, _ in done], batch.finished_at)
        ids = [self.job_id_param(job_id) for job_id, _ in done]
        in_ids = f"{q('id')} IN ({self.placeholders(len(ids))})"
        if not batch.preserve:
            cursor.execute(
                f"DELETE FROM {self.job_table} WHERE {in_ids}{self.by_ids(len(ids))}", ids
            )
            return held
        finished_at = self.datetime_param(batch.finished_at)
        values = [self.json_param(value) for _, value in done]
        if all(value == done[0][1] for _, value in done):
            return_value, value_params = "%s", values[:1]
        else:
            # Still one statement: each row picks its own value.
            return_value = f"CASE {q('id')} {' '.join(['WHEN %s THEN %s'] * len(done))} END"
            value_params = [item for pair in zip(ids, values, strict=True) for item in pair]
        cursor.execute(
            f"UPDATE {self.job_table} SET {q('finished_at')} = %s, "
            f"{q('return_value')} = {return_value}, {self.release_unique_key()} "
            f"WHERE {in_ids}{self.by_ids(len(ids))}",
            [finished_at, *value_params, finished_at, *ids],
        )
        return held

    def use_wal(self) -> str | None:
        """Put the database in WAL journal mode if it has one; the mode it left,
        or None when nothing changed. Only SQLite has a journal mode to set."""
        return None

    def release_unique_key(self) -> str:
        """SET clause (one parameter: the finishing time) ending a job's hold on
        its unique key, unless ``unique_until`` is still ahead of that time."""
        q = self.q
        return f"{q('unique_key')} = CASE WHEN {q('unique_until')} > %s THEN {q('unique_key')} END"

    def complete(self, cursor: CursorWrapper, completion: Completion) -> bool:
        """Release the claim and record the outcome, inside a transaction; False
        (and nothing written) when the process no longer holds the claim."""
        q = self.q
        job = self.job_id_param(completion.job_id)
        if not self.release_claim(cursor, completion.job_id, completion.process_id):
            return False
        self.tally_succeeded(cursor, [completion.job_id], completion.finished_at)
        if completion.preserve:
            finished_at = self.datetime_param(completion.finished_at)
            cursor.execute(
                f"UPDATE {self.job_table} SET {q('finished_at')} = %s, {q('return_value')} = %s, "
                f"{self.release_unique_key()} WHERE {q('id')} = %s",
                [finished_at, self.json_param(completion.return_value), finished_at, job],
            )
        else:
            cursor.execute(f"DELETE FROM {self.job_table} WHERE {q('id')} = %s", [job])
        return True

    # -- single statements (drivers with single_statement_transitions) ----------
    def claim_statement(self, request: ClaimRequest) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def complete_statement(self, completion: Completion) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def complete_many_statement(self, batch: CompletionBatch) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def complete_many_and_claim_statement(
        self, batch: CompletionBatch, request: ClaimRequest
    ) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def complete_and_claim_statement(
        self, completion: Completion, request: ClaimRequest
    ) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def enqueue_statement(
        self, jobs: Sequence[Any], now: datetime, *, notify: bool
    ) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def notify_statement(self, queue_names: Sequence[str]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any]) -> Any:
        """Run one hot statement; returns a cursor to fetch from."""
        raise NotImplementedError

    def json_append(self, column: str) -> str:
        """SQL for ``column`` (a JSON array) with one string parameter appended."""
        raise NotImplementedError

    def serialized(self) -> AbstractContextManager[Any]:
        """Held around each queue transaction of this process (see SQLite)."""
        return nullcontext()

    # -- errors ---------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a conflict that succeeds when the transaction is retried."""
        return False


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape character ``!``) matching names that start with ``prefix``."""
    return prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
