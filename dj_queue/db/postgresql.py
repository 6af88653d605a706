"""PostgreSQL: every hot transition is one statement.

Data-modifying CTEs let a claim (take ready rows, record the claims, stamp the
attempt, return the jobs), a completion (release the claim, record the result)
and an enqueue (insert jobs and their first state rows, wake listeners) each be
a single statement: one round trip, and in autocommit a transaction of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from .base import NOTIFY_CHANNEL, ClaimRequest, Completion, CompletionBatch, Driver

# Jobs per enqueue written as VALUES rows rather than unpacked from JSON.
VALUES_ROWS = 20

# serialization_failure, deadlock_detected, lock_not_available
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}


class PostgreSQLDriver(Driver):
    """Hot statements go through a server-side binding psycopg cursor: the
    parameters travel apart from the SQL instead of being quoted into it. With
    ``prepare_threshold`` set in the database OPTIONS, psycopg also prepares them
    (their text never changes); Django leaves it off, which keeps PgBouncer's
    transaction pooling working."""

    vendor = "postgresql"
    delete_returning = True
    single_statement_transitions = True
    supports_notify = True

    def execute(self, sql: str, params: Sequence[Any]) -> Any:
        """Run ``sql`` with server-side binding; returns the psycopg cursor."""
        self.connection.ensure_connection()
        cursor = psycopg.Cursor(self.connection.connection)
        with self.connection.wrap_database_errors:
            cursor.execute(sql, params)
        return cursor

    def json_append(self, column: str) -> str:
        return f"{column} || jsonb_build_array(%s::text)"

    def is_transient(self, exc: BaseException) -> bool:
        cause = exc.__cause__ or exc
        return getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES

    # -- claim ------------------------------------------------------------------
    # Each statement is built as (CTEs, final statement, parameters), so that a
    # completion and the next claim can be joined into one statement.
    def _claim_parts(self, request: ClaimRequest) -> tuple[str, str, list[Any]]:
        q = self.q
        condition, params = self.selector_condition(request.selector)
        queue = q("queue_name")
        choose = (
            f"SELECT {q('id')} FROM {self.ready_table} "
            f"WHERE {condition} AND {self.queue_not_paused(queue)} "
            f"ORDER BY {q('priority')} DESC, {q('id')} ASC LIMIT %s"
            f"{self.lock_clause(request.skip_locked)}"
        )
        columns = ", ".join(f"j.{q(column)}" for column in self.job_columns)
        when = self.datetime_param(request.now)
        worker_ids = q("worker_ids")
        ctes = (
            f"taken AS ("
            f"DELETE FROM {self.ready_table} WHERE {q('id')} IN ({choose}) "
            f"RETURNING {q('id')}, {q('job_id')}"
            f"), claimed AS ("
            f"INSERT INTO {self.claimed_table} "
            f"({q('job_id')}, {q('process_id')}, {q('created_at')}) "
            f"SELECT {q('job_id')}, %s, %s FROM taken)"
        )
        final = (
            f"UPDATE {self.job_table} AS j SET "
            f"{q('started_at')} = COALESCE(j.{q('started_at')}, %s), "
            f"{q('last_attempted_at')} = %s, "
            f"{worker_ids} = {self.json_append(f'j.{worker_ids}')} "
            f"FROM taken WHERE j.{q('id')} = taken.{q('job_id')} "
            f"RETURNING {columns}, taken.{q('id')} AS dj_queue_ready_id"
        )
        params += [request.limit, request.process_id, when, when, when, request.worker_id]
        return ctes, final, params

    def claim_statement(self, request: ClaimRequest) -> tuple[str, list[Any]]:
        """SQL returning the claimed jobs' rows, plus ``dj_queue_ready_id``."""
        ctes, final, params = self._claim_parts(request)
        return f"WITH {ctes} {final}", params

    # -- complete ------------------------------------------------------------
    def _complete_parts(self, completion: Completion) -> tuple[str, str, list[Any]]:
        q = self.q
        ctes = (
            f"released AS ("
            f"DELETE FROM {self.claimed_table} WHERE {self.claim_held_by()} "
            f"RETURNING {q('job_id')})"
        )
        params: list[Any] = [self.job_id_param(completion.job_id), completion.process_id]
        if completion.preserve:
            final = (
                f"UPDATE {self.job_table} AS f SET {q('finished_at')} = %s, "
                f"{q('return_value')} = %s, {self.release_unique_key()} FROM released "
                f"WHERE f.{q('id')} = released.{q('job_id')} RETURNING {self._finished_columns}"
            )
            finished_at = self.datetime_param(completion.finished_at)
            params += [finished_at, self.json_param(completion.return_value), finished_at]
        else:
            final = (
                f"DELETE FROM {self.job_table} AS f USING released "
                f"WHERE f.{q('id')} = released.{q('job_id')} RETURNING {self._finished_columns}"
            )
        return ctes, final, params

    # What the finishing statements return: the id, then what the tally groups by.
    @property
    def _finished_columns(self) -> str:
        q = self.q
        return f"f.{q('id')}, f.{q('backend_alias')}, f.{q('queue_name')}"

    def _finished_and_tallied(
        self, ctes: str, final: str, params: list[Any], finished_at: datetime
    ) -> tuple[str, list[Any]]:
        """The CTEs of a completion, its final statement as ``finished``, and
        the tally of what it finished: what a finishing statement starts with."""
        tally, tally_params = self.tally_cte("finished", finished_at)
        return f"WITH {ctes}, finished AS ({final}), {tally}", [*params, *tally_params]

    def complete_statement(self, completion: Completion) -> tuple[str, list[Any]]:
        """SQL returning one row if (and only if) the process held the claim."""
        head, params = self._finished_and_tallied(
            *self._complete_parts(completion), completion.finished_at
        )
        return f"{head} SELECT {self.q('id')} FROM finished", params

    # -- complete a batch --------------------------------------------------------
    def _complete_many_parts(self, batch: CompletionBatch) -> tuple[str, str, list[Any]]:
        """Like ``_complete_parts`` for many jobs: their ids and return values
        travel as two arrays, so the statement's text is the same for any batch."""
        q = self.q
        encoder = self._json_field.encoder
        values = [
            None if value is None else json.dumps(value, cls=encoder) for _, value in batch.results
        ]
        ctes = (
            f"done AS (SELECT * FROM unnest(%s::uuid[], %s::text[]) AS d(job_id, return_value)), "
            f"released AS ("
            f"DELETE FROM {self.claimed_table} AS c USING done "
            f"WHERE c.{q('job_id')} = done.job_id AND c.{self.held_by_process()} "
            f"RETURNING c.{q('job_id')})"
        )
        params: list[Any] = [batch.job_ids, values, batch.process_id]
        if batch.preserve:
            final = (
                f"UPDATE {self.job_table} AS f SET {q('finished_at')} = %s, "
                f"{q('return_value')} = done.return_value::jsonb, {self.release_unique_key()} "
                f"FROM released JOIN done ON done.job_id = released.{q('job_id')} "
                f"WHERE f.{q('id')} = released.{q('job_id')} RETURNING {self._finished_columns}"
            )
            finished_at = self.datetime_param(batch.finished_at)
            params += [finished_at, finished_at]
        else:
            final = (
                f"DELETE FROM {self.job_table} AS f USING released "
                f"WHERE f.{q('id')} = released.{q('job_id')} RETURNING {self._finished_columns}"
            )
        return ctes, final, params

    def complete_many_statement(self, batch: CompletionBatch) -> tuple[str, list[Any]]:
        """SQL returning the id of each job recorded (its claim was still held)."""
        head, params = self._finished_and_tallied(
            *self._complete_many_parts(batch), batch.finished_at
        )
        return f"{head} SELECT {self.q('id')} FROM finished", params

    def complete_many_and_claim_statement(
        self, batch: CompletionBatch, request: ClaimRequest
    ) -> tuple[str, list[Any]]:
        """One statement for a worker's whole round: record the batch and claim
        up to ``request.limit`` jobs. Each row holds the array of recorded ids,
        then a claimed job's ``job_columns`` and ready row id; a single row of
        NULL job columns when nothing was claimed."""
        head, complete_params = self._finished_and_tallied(
            *self._complete_many_parts(batch), batch.finished_at
        )
        claim_ctes, claim_final, claim_params = self._claim_parts(request)
        sql = (
            f"{head}, {claim_ctes}, next_jobs AS ({claim_final}) "
            f"SELECT (SELECT array_agg({self.q('id')}) FROM finished), next_jobs.* "
            f"FROM (VALUES (1)) AS one LEFT JOIN next_jobs ON true"
        )
        return sql, [*complete_params, *claim_params]

    # -- complete and claim the next -------------------------------------------
    def complete_and_claim_statement(
        self, completion: Completion, request: ClaimRequest
    ) -> tuple[str, list[Any]]:
        """One row: 1 or 0 (the completion was recorded or not), then the next
        claimed job's ``job_columns`` (all NULL when there was none). The two
        job rows touched are never the same: one is claimed, the other ready."""
        head, complete_params = self._finished_and_tallied(
            *self._complete_parts(completion), completion.finished_at
        )
        claim_ctes, claim_final, claim_params = self._claim_parts(request)
        columns = ", ".join(f"next_job.{self.q(column)}" for column in self.job_columns)
        sql = (
            f"{head}, {claim_ctes}, next_job AS ({claim_final}) "
            f"SELECT (SELECT count(*) FROM finished), {columns} "
            f"FROM (VALUES (1)) AS one LEFT JOIN next_job ON true"
        )
        return sql, [*complete_params, *claim_params]

    # -- reads --------------------------------------------------------------------
    def distinct_names_statement(self, table: str, limit: int) -> tuple[str, list[Any]]:
        """PostgreSQL has no loose index scan: a recursive query jumps from one
        name to the next through the index, one probe per distinct name."""
        column = self.q("queue_name")
        return (
            f"WITH RECURSIVE names(name) AS ("
            f"(SELECT {column} FROM {table} ORDER BY {column} LIMIT 1) "
            f"UNION ALL SELECT (SELECT {column} FROM {table} WHERE {column} > names.name "
            f"ORDER BY {column} LIMIT 1) FROM names WHERE names.name IS NOT NULL"
            f") SELECT name FROM names WHERE name IS NOT NULL LIMIT %s",
            [limit],
        )

    # -- enqueue ------------------------------------------------------------------
    # Columns a new job takes from its call; every other column starts empty.
    _CALL_COLUMNS = {
        "id": "uuid",
        "backend_alias": "text",
        "task_path": "text",
        "queue_name": "text",
        "priority": "smallint",
        "args": "jsonb",
        "kwargs": "jsonb",
        "run_after": "timestamptz",
        "retry_policy": "jsonb",
        "timeout": "float8",
        "unique_key": "text",
        "unique_until": "timestamptz",
    }
    _EMPTY_JSON_LISTS = {"worker_ids", "errors"}

    def enqueue_statement(
        self, jobs: Sequence[Any], now: datetime, *, notify: bool
    ) -> tuple[str, list[Any]]:
        """SQL inserting ``jobs`` (NewJob calls) with their ready or scheduled
        rows. A few jobs go in as VALUES rows, which PostgreSQL plans fastest;
        a larger batch travels as one JSON document that PostgreSQL unpacks
        into rows: one parameter, whatever the batch size."""
        q = self.q
        when = self.datetime_param(now)
        if len(jobs) <= VALUES_ROWS:
            row = "(" + self.placeholders(len(self._job_fields)) + ")"
            source = f"VALUES {', '.join([row] * len(jobs))}"
            job_params = [
                value for job in jobs for value in self.job_row_params(job, finished=False, now=now)
            ]
        else:
            source, job_params = self._recordset_source(jobs, when)
        new = f"{q('id')}, {q('queue_name')}, {q('priority')}"
        sql = (
            f"WITH new_jobs AS ("
            f"INSERT INTO {self.job_table} ({self.job_column_list}) {source} "
            f"RETURNING {new}, {q('run_after')}"
            f"), scheduled AS ("
            f"INSERT INTO {self.scheduled_table} "
            f"({q('job_id')}, {q('queue_name')}, {q('priority')}, {q('scheduled_at')}, "
            f"{q('created_at')}) "
            f"SELECT {new}, {q('run_after')}, %s FROM new_jobs WHERE {q('run_after')} > %s"
            f"), ready AS ("
            f"INSERT INTO {self.ready_table} "
            f"({q('job_id')}, {q('queue_name')}, {q('priority')}, {q('created_at')}) "
            f"SELECT {new}, %s FROM new_jobs "
            f"WHERE {q('run_after')} IS NULL OR {q('run_after')} <= %s "
            f"RETURNING {q('queue_name')}) "
        )
        params: list[Any] = [*job_params, when, when, when, when]
        if notify:
            sql += (
                f"SELECT pg_notify(%s, {q('queue_name')}) "
                f"FROM (SELECT DISTINCT {q('queue_name')} FROM ready) AS queues"
            )
            params.append(NOTIFY_CHANNEL)
        else:
            sql += "SELECT 1 FROM ready LIMIT 0"
        return sql, params

    def _recordset_source(self, jobs: Sequence[Any], when: Any) -> tuple[str, list[Any]]:
        """The rows of ``jobs`` as a SELECT from one JSON document, in order."""
        document = json.dumps(
            [
                {
                    "id": str(job.id),
                    "backend_alias": job.backend_alias,
                    "task_path": job.task_path,
                    "queue_name": job.queue_name,
                    "priority": job.priority,
                    "args": job.args,
                    "kwargs": job.kwargs,
                    "run_after": job.run_after.isoformat() if job.run_after else None,
                    "retry_policy": job.retry_policy,
                    "timeout": job.timeout,
                    "unique_key": job.unique_key,
                    "unique_until": job.unique_until.isoformat() if job.unique_until else None,
                }
                for job in jobs
            ]
        )
        record = ", ".join(f"{name} {kind}" for name, kind in self._CALL_COLUMNS.items())
        names = ", ".join(self._CALL_COLUMNS)
        values = []
        for field in self._job_fields:
            if field.name in self._CALL_COLUMNS:
                values.append(f"r.{field.name}")
            elif field.name == "enqueued_at":
                values.append("%s")
            elif field.name in self._EMPTY_JSON_LISTS:
                values.append("'[]'::jsonb")
            else:
                assert field.null, f"a new job needs a value for {field.name}"
                values.append("NULL")
        source = (
            f"SELECT {', '.join(values)} "
            f"FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({record})) "
            f"WITH ORDINALITY AS r({names}, position) "
            f"ORDER BY r.position"
        )
        return source, [when, document]

    def notify_statement(self, queue_names: Sequence[str]) -> tuple[str, list[Any]]:
        placeholders = ", ".join(["(%s)"] * len(queue_names))
        return (
            f"SELECT pg_notify(%s, name) FROM (VALUES {placeholders}) AS queues (name)",
            [NOTIFY_CHANNEL, *queue_names],
        )
