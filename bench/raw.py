"""Raw-driver reference for the queue benchmark: the job life cycle the Django systems
go through, written straight against psycopg, MySQLdb and sqlite3, to show what the
database itself allows on this machine.

    .venv/bin/python bench/raw.py --database postgresql|sqlite|mariadb [--quick]

Standalone, it makes its own scratch database (local servers: PostgreSQL as postgres
on 127.0.0.1:5432, MariaDB as root on 127.0.0.1:3306) and drops it afterwards.
bench/run.py calls measure() instead. Nothing here imports Django or dj_queue: the
consumer processes are spawned from a clean interpreter and must stay cheap to start.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

BATCH_SIZE = 500  # jobs per multi-row INSERT in the bulk measurement
CONSUMERS = 4  # consumer processes in the drain measurements
CLAIM_BATCH = 100  # jobs per claim in drain_batched_100
LATENCY_RATE = 20.0  # jobs per second
WARMUP_JOBS = 20  # enqueued before the clock starts, so the first timed job is not the first
MAX_ATTEMPTS = 20  # per transaction, when it hits a deadlock or a busy database
BUSY_TIMEOUT = 5.0  # seconds, SQLite
CHANNEL = "bench_raw_ready"
QUEUE_NAME = "default"
TASK_PATH = "bench.tasks.noop"
ARGS = json.dumps({"args": [], "kwargs": {}})
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")

JOB = "bench_raw_job"
READY = "bench_raw_ready"
CLAIMED = "bench_raw_claimed"
TABLES = (CLAIMED, READY, JOB)  # drop order: referencing tables first

INSERT_JOB_COLUMNS = "(id, queue_name, task_path, priority, args, enqueued_at)"
INSERT_READY_COLUMNS = "(job_id, queue_name, priority)"
JOB_ROW = "(%s, %s, %s, %s, %s, %s)"
READY_ROW = "(%s, %s, %s)"


# -- dialects ---------------------------------------------------------------------


class Dialect:
    """What differs per database: driver, column types, transaction start, claim SQL.

    Picklable by construction (vendor + connection parameters), so spawned consumers
    rebuild the same dialect.
    """

    vendor: ClassVar[str]
    types: ClassVar[dict[str, str]]  # uuid, json, ts, autoid, table suffix
    claim_text: ClassVar[str]  # for the descriptions, {op} and {n} filled in
    finish_text: ClassVar[str]

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def connect(self) -> Any:
        raise NotImplementedError

    def begin(self, cursor: Any) -> None:
        """Start a write transaction (drivers other than sqlite3 start one implicitly)."""

    def sql(self, text: str) -> str:
        return text

    def new_id(self) -> Any:
        return str(uuid.uuid4())

    def now(self) -> Any:
        return datetime.now(UTC)

    def is_transient(self, exc: BaseException) -> bool:
        return False

    def claim(self, cursor: Any, limit: int, process_id: int, now: Any) -> list[Any]:
        """Move up to ``limit`` jobs from ready to claimed; return their ids."""
        raise NotImplementedError

    def finish(self, cursor: Any, job_ids: list[Any], started: Any, finished: Any) -> None:
        raise NotImplementedError

    def ddl(self) -> list[str]:
        t = self.types
        return [
            f"CREATE TABLE {JOB} ("
            f"id {t['uuid']} NOT NULL PRIMARY KEY, "
            "queue_name VARCHAR(64) NOT NULL, "
            "task_path VARCHAR(255) NOT NULL, "
            "priority INTEGER NOT NULL, "
            f"args {t['json']} NOT NULL, "
            f"enqueued_at {t['ts']} NOT NULL, "
            f"started_at {t['ts']} NULL, "
            f"finished_at {t['ts']} NULL){t['suffix']}",
            f"CREATE INDEX {JOB}_finished ON {JOB} (finished_at)",
            f"CREATE TABLE {READY} ("
            f"id {t['autoid']}, "
            f"job_id {t['uuid']} NOT NULL, "
            "queue_name VARCHAR(64) NOT NULL, "
            "priority INTEGER NOT NULL, "
            f"UNIQUE (job_id), FOREIGN KEY (job_id) REFERENCES {JOB} (id)){t['suffix']}",
            f"CREATE INDEX {READY}_pick ON {READY} (priority DESC, id)",
            f"CREATE TABLE {CLAIMED} ("
            f"id {t['autoid']}, "
            f"job_id {t['uuid']} NOT NULL, "
            "process_id INTEGER NOT NULL, "
            f"claimed_at {t['ts']} NOT NULL, "
            f"UNIQUE (job_id), FOREIGN KEY (job_id) REFERENCES {JOB} (id)){t['suffix']}",
        ]

    def describe_claim(self, limit: int) -> str:
        return self.claim_text.format(op="=" if limit == 1 else "IN", n=limit)

    def pick(self, limit: int) -> str:
        """The ready rows to take, highest priority first, oldest first."""
        return f"SELECT id FROM {READY} ORDER BY priority DESC, id LIMIT {int(limit)}"

    def schema_text(self) -> str:
        t = self.types
        return (
            f"tables {JOB} (id {t['uuid']} PK, queue_name, task_path, priority, args "
            f"{t['json']}, enqueued_at/started_at/finished_at {t['ts']}, index on finished_at), "
            f"{READY} (autoincrement id, job_id unique FK, queue_name, priority, index "
            f"(priority DESC, id)), {CLAIMED} (autoincrement id, job_id unique FK, process_id, "
            "claimed_at)"
        )


class Postgres(Dialect):
    vendor = "postgresql"
    types = {
        "uuid": "uuid",
        "json": "jsonb",
        "ts": "timestamptz",
        "autoid": "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "suffix": "",
    }
    claim_text = (
        "one statement: WITH taken AS (DELETE FROM ready WHERE id {op} (SELECT id ... "
        "ORDER BY priority DESC, id LIMIT {n} FOR UPDATE SKIP LOCKED) RETURNING job_id) "
        "INSERT INTO claimed SELECT ... FROM taken RETURNING job_id"
    )
    finish_text = (
        "one statement: WITH released AS (DELETE FROM claimed WHERE job_id = ANY(ids) "
        "RETURNING job_id) UPDATE job SET started_at, finished_at FROM released"
    )

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(**self.params)

    def new_id(self) -> Any:
        return uuid.uuid4()

    def is_transient(self, exc: BaseException) -> bool:
        # serialization failure, deadlock, lock not available
        return getattr(exc, "sqlstate", None) in ("40001", "40P01", "55P03")

    def claim(self, cursor: Any, limit: int, process_id: int, now: Any) -> list[Any]:
        operator = "=" if limit == 1 else "IN"
        cursor.execute(
            f"WITH taken AS (DELETE FROM {READY} WHERE id {operator} "
            f"({self.pick(limit)} FOR UPDATE SKIP LOCKED) RETURNING job_id) "
            f"INSERT INTO {CLAIMED} (job_id, process_id, claimed_at) "
            "SELECT job_id, %s, %s FROM taken RETURNING job_id",
            (process_id, now),
        )
        return [row[0] for row in cursor.fetchall()]

    def finish(self, cursor: Any, job_ids: list[Any], started: Any, finished: Any) -> None:
        cursor.execute(
            f"WITH released AS (DELETE FROM {CLAIMED} WHERE job_id = ANY(%s) RETURNING job_id) "
            f"UPDATE {JOB} AS j SET started_at = %s, finished_at = %s "
            "FROM released WHERE j.id = released.job_id",
            (job_ids, started, finished),
        )
        _expect_rows(cursor, len(job_ids))


class MariaDB(Dialect):
    vendor = "mariadb"
    types = {
        "uuid": "CHAR(36) CHARACTER SET ascii",
        "json": "JSON",
        "ts": "DATETIME(6)",
        "autoid": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "suffix": " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    }
    claim_text = (
        "SELECT id, job_id FROM ready ORDER BY priority DESC, id LIMIT {n} FOR UPDATE SKIP "
        "LOCKED; DELETE FROM ready WHERE id IN (...); INSERT INTO claimed VALUES (...)[, ...]"
    )
    finish_text = (
        "DELETE FROM claimed WHERE job_id IN (...); "
        "UPDATE job SET started_at, finished_at WHERE id IN (...)"
    )

    def connect(self) -> Any:
        import MySQLdb

        return MySQLdb.connect(**self.params)

    def now(self) -> Any:
        # DATETIME(6) holds no zone: naive UTC, as Django stores it with USE_TZ.
        return datetime.now(UTC).replace(tzinfo=None)

    def is_transient(self, exc: BaseException) -> bool:
        import MySQLdb

        # 1205 lock wait timeout, 1213 deadlock
        return isinstance(exc, MySQLdb.OperationalError) and exc.args[:1] in ((1205,), (1213,))

    def claim(self, cursor: Any, limit: int, process_id: int, now: Any) -> list[Any]:
        cursor.execute(
            f"SELECT id, job_id FROM {READY} ORDER BY priority DESC, id "
            f"LIMIT {int(limit)} FOR UPDATE SKIP LOCKED"
        )
        rows = cursor.fetchall()
        if not rows:
            return []
        cursor.execute(
            f"DELETE FROM {READY} WHERE id IN ({_marks(len(rows))})", [row[0] for row in rows]
        )
        job_ids = [row[1] for row in rows]
        values = ", ".join(["(%s, %s, %s)"] * len(rows))
        params = [value for job_id in job_ids for value in (job_id, process_id, now)]
        cursor.execute(
            f"INSERT INTO {CLAIMED} (job_id, process_id, claimed_at) VALUES {values}", params
        )
        return job_ids

    def finish(self, cursor: Any, job_ids: list[Any], started: Any, finished: Any) -> None:
        marks = _marks(len(job_ids))
        cursor.execute(f"DELETE FROM {CLAIMED} WHERE job_id IN ({marks})", job_ids)
        cursor.execute(
            f"UPDATE {JOB} SET started_at = %s, finished_at = %s WHERE id IN ({marks})",
            [started, finished, *job_ids],
        )
        _expect_rows(cursor, len(job_ids))


class SQLite(Dialect):
    vendor = "sqlite"
    types = {
        "uuid": "TEXT",
        "json": "TEXT",
        "ts": "TEXT",
        "autoid": "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
        "suffix": "",
    }
    claim_text = (
        "BEGIN IMMEDIATE; DELETE FROM ready WHERE id {op} (SELECT id ... ORDER BY "
        "priority DESC, id LIMIT {n}) RETURNING job_id; INSERT INTO claimed VALUES (...)[, ...]"
    )
    finish_text = (
        "BEGIN IMMEDIATE; DELETE FROM claimed WHERE job_id IN (...); "
        "UPDATE job SET started_at, finished_at WHERE id IN (...)"
    )

    def connect(self) -> Any:
        # isolation_level=None: the driver opens no transactions; begin() does, IMMEDIATE,
        # so a writer waits for the lock up front instead of failing to upgrade later.
        connection = sqlite3.connect(
            self.params["path"], timeout=BUSY_TIMEOUT, isolation_level=None
        )
        connection.execute("PRAGMA foreign_keys = ON")  # as Django's SQLite backend does
        return connection

    def begin(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def sql(self, text: str) -> str:
        return text.replace("%s", "?")

    def now(self) -> Any:
        return datetime.now(UTC).isoformat(sep=" ")

    def is_transient(self, exc: BaseException) -> bool:
        # SQLITE_BUSY / SQLITE_LOCKED and their extended codes
        code = getattr(exc, "sqlite_errorcode", None)
        return (
            isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF in (5, 6)
        )

    def claim(self, cursor: Any, limit: int, process_id: int, now: Any) -> list[Any]:
        operator = "=" if limit == 1 else "IN"
        cursor.execute(
            f"DELETE FROM {READY} WHERE id {operator} ({self.pick(limit)}) RETURNING job_id"
        )
        job_ids = [row[0] for row in cursor.fetchall()]
        if not job_ids:
            return []
        values = ", ".join(["(?, ?, ?)"] * len(job_ids))
        params = [value for job_id in job_ids for value in (job_id, process_id, now)]
        cursor.execute(
            f"INSERT INTO {CLAIMED} (job_id, process_id, claimed_at) VALUES {values}", params
        )
        return job_ids

    def finish(self, cursor: Any, job_ids: list[Any], started: Any, finished: Any) -> None:
        marks = ", ".join("?" * len(job_ids))
        cursor.execute(f"DELETE FROM {CLAIMED} WHERE job_id IN ({marks})", job_ids)
        cursor.execute(
            f"UPDATE {JOB} SET started_at = ?, finished_at = ? WHERE id IN ({marks})",
            [started, finished, *job_ids],
        )
        _expect_rows(cursor, len(job_ids))


DIALECTS: dict[str, type[Dialect]] = {d.vendor: d for d in (Postgres, MariaDB, SQLite)}


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _expect_rows(cursor: Any, count: int) -> None:
    """A finish that touched fewer jobs than it claimed means a broken claim."""
    if cursor.rowcount != count:
        raise RuntimeError(f"finished {cursor.rowcount} job row(s), expected {count}")


# -- shared steps -----------------------------------------------------------------


class Worker:
    """One connection doing claim/finish transactions, retrying deadlocks and busy errors."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.connection = dialect.connect()
        self.cursor = self.connection.cursor()
        self.process_id = os.getpid()
        self.retries = 0

    def transaction[T](self, work: Callable[[], T]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                self.dialect.begin(self.cursor)
                result = work()
                self.connection.commit()
                return result
            except Exception as exc:
                self.connection.rollback()
                if attempt == MAX_ATTEMPTS - 1 or not self.dialect.is_transient(exc):
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    def step(self, limit: int) -> int:
        """Claim up to ``limit`` jobs (one commit), finish them (one commit); 0 if none."""
        dialect = self.dialect
        claimed_at = dialect.now()
        job_ids = self.transaction(
            lambda: dialect.claim(self.cursor, limit, self.process_id, claimed_at)
        )
        if job_ids:
            self.transaction(
                lambda: dialect.finish(self.cursor, job_ids, claimed_at, dialect.now())
            )
        return len(job_ids)

    def ready_left(self) -> bool:
        """Whether ready rows remain that SKIP LOCKED passed over (claims in flight)."""
        self.cursor.execute(f"SELECT 1 FROM {READY} LIMIT 1")
        found = self.cursor.fetchone() is not None
        self.connection.commit()
        return found

    def close(self) -> None:
        self.connection.close()


def _reset(dialect: Dialect) -> None:
    """Drop and recreate the tables: every measurement starts from fresh, empty ones."""
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        if dialect.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode=WAL")
        for table in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in dialect.ddl():
            cursor.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _drop(dialect: Dialect) -> None:
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        for table in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        connection.commit()
    finally:
        connection.close()


def _enqueue_one(dialect: Dialect, connection: Any, cursor: Any) -> None:
    job_id = dialect.new_id()
    dialect.begin(cursor)
    cursor.execute(
        dialect.sql(f"INSERT INTO {JOB} {INSERT_JOB_COLUMNS} VALUES {JOB_ROW}"),
        (job_id, QUEUE_NAME, TASK_PATH, 0, ARGS, dialect.now()),
    )
    cursor.execute(
        dialect.sql(f"INSERT INTO {READY} {INSERT_READY_COLUMNS} VALUES {READY_ROW}"),
        (job_id, QUEUE_NAME, 0),
    )
    connection.commit()


def _enqueue_batch(dialect: Dialect, connection: Any, cursor: Any, count: int) -> None:
    job_ids = [dialect.new_id() for _ in range(count)]
    now = dialect.now()
    dialect.begin(cursor)
    cursor.execute(
        dialect.sql(
            f"INSERT INTO {JOB} {INSERT_JOB_COLUMNS} VALUES {', '.join([JOB_ROW] * count)}"
        ),
        [v for job_id in job_ids for v in (job_id, QUEUE_NAME, TASK_PATH, 0, ARGS, now)],
    )
    cursor.execute(
        dialect.sql(
            f"INSERT INTO {READY} {INSERT_READY_COLUMNS} VALUES {', '.join([READY_ROW] * count)}"
        ),
        [v for job_id in job_ids for v in (job_id, QUEUE_NAME, 0)],
    )
    connection.commit()


def _enqueue_many(dialect: Dialect, connection: Any, cursor: Any, count: int) -> None:
    for start in range(0, count, BATCH_SIZE):
        _enqueue_batch(dialect, connection, cursor, min(BATCH_SIZE, count - start))


def _throughput(count: int, seconds: float, description: str) -> dict[str, Any]:
    return {
        "count": count,
        "seconds": seconds,
        "jobs_per_s": count / seconds,
        "description": description,
    }


# -- measurements -----------------------------------------------------------------


def _measure_enqueue(dialect: Dialect, count: int) -> dict[str, Any]:
    _reset(dialect)
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        for _ in range(WARMUP_JOBS):
            _enqueue_one(dialect, connection, cursor)
        started = time.perf_counter()
        for _ in range(count):
            _enqueue_one(dialect, connection, cursor)
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    return _throughput(
        count,
        seconds,
        f"{count} jobs from one connection, one transaction each: INSERT job row + INSERT "
        f"ready row, commit ({WARMUP_JOBS} untimed warm-up jobs first); {dialect.schema_text()}",
    )


def _measure_bulk(dialect: Dialect, count: int) -> dict[str, Any]:
    _reset(dialect)
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        _enqueue_batch(dialect, connection, cursor, BATCH_SIZE)  # warm-up
        started = time.perf_counter()
        _enqueue_many(dialect, connection, cursor, count)
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    return _throughput(
        count,
        seconds,
        f"{count} jobs from one connection in batches of {BATCH_SIZE}: one multi-row INSERT "
        f"of job rows + one multi-row INSERT of ready rows, one commit per batch (one untimed "
        "warm-up batch first)",
    )


def _measure_drain(dialect: Dialect, count: int, limit: int) -> dict[str, Any]:
    _reset(dialect)
    connection = dialect.connect()
    try:
        _enqueue_many(dialect, connection, connection.cursor(), count)
    finally:
        connection.close()
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    start = context.Event()
    arguments = (dialect.vendor, dialect.params, limit, start, messages)
    with _processes(context, _consume, arguments, CONSUMERS) as processes:
        _collect(messages, processes, "ready", timeout=60)
        started = time.monotonic()
        start.set()
        results = _collect(messages, processes, "done", timeout=60 + count / 20)
    seconds = max(result["last_finish"] for result in results) - started
    done = [result["jobs"] for result in results]
    _check_all_finished(dialect, count, sum(done))
    per_claim = "one job" if limit == 1 else f"up to {limit} jobs"
    return {
        **_throughput(
            count,
            seconds,
            f"{count} pre-inserted ready jobs (untimed) drained by {CONSUMERS} spawned consumer "
            f"processes, one connection each, opened before the clock starts; each loops: claim "
            f"{per_claim} in one transaction [{dialect.describe_claim(limit)}], commit; finish "
            f"{'it' if limit == 1 else 'the batch'} [{dialect.finish_text}], commit; until no "
            "ready row is left. Clock from releasing the consumers to the last finish commit.",
        ),
        "processes": CONSUMERS,
        "claim_limit": limit,
        "per_process_jobs": done,
        "retries": sum(result["retries"] for result in results),
    }


def _consume(vendor: str, params: dict[str, Any], limit: int, start: Any, messages: Any) -> None:
    """A drain consumer: claim and finish until no ready row is left."""
    try:
        worker = Worker(DIALECTS[vendor](params))
        messages.put(("ready", os.getpid(), {}))
        start.wait()
        jobs = 0
        last_finish = time.monotonic()
        while True:
            taken = worker.step(limit)
            if taken:
                jobs += taken
                last_finish = time.monotonic()  # system-wide clock on Linux: comparable
            elif worker.ready_left():
                time.sleep(0.001)
            else:
                break
        messages.put(
            (
                "done",
                os.getpid(),
                {"jobs": jobs, "last_finish": last_finish, "retries": worker.retries},
            )
        )
        worker.close()
    except BaseException:
        messages.put(("error", os.getpid(), {"traceback": traceback.format_exc()}))


def _measure_latency(dialect: Dialect, count: int) -> dict[str, Any]:
    _reset(dialect)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    arguments = (dialect.params, count, messages)
    with _processes(context, _listen, arguments, 1) as processes:
        _collect(messages, processes, "ready", timeout=60)
        connection = dialect.connect()
        try:
            cursor = connection.cursor()
            started = time.perf_counter()
            for index in range(count):
                delay = started + index / LATENCY_RATE - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                job_id = dialect.new_id()
                cursor.execute(
                    f"INSERT INTO {JOB} {INSERT_JOB_COLUMNS} VALUES {JOB_ROW}",
                    (job_id, QUEUE_NAME, TASK_PATH, 0, ARGS, dialect.now()),
                )
                cursor.execute(
                    f"INSERT INTO {READY} {INSERT_READY_COLUMNS} VALUES {READY_ROW}",
                    (job_id, QUEUE_NAME, 0),
                )
                cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
                connection.commit()
            seconds = time.perf_counter() - started
            (result,) = _collect(messages, processes, "done", timeout=30)
            cursor.execute(
                f"SELECT EXTRACT(EPOCH FROM started_at - enqueued_at) * 1000 FROM {JOB} "
                "WHERE finished_at IS NOT NULL"
            )
            delays = sorted(float(row[0]) for row in cursor.fetchall())
            connection.commit()
        finally:
            connection.close()
    if len(delays) != count:
        raise RuntimeError(f"latency: {len(delays)} of {count} jobs finished")
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {
        "count": count,
        "seconds": seconds,
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": delays[-1],
        "mean_ms": statistics.fmean(delays),
        "wakeups_without_notify": result["timeouts"],
        "retries": result["retries"],
        "description": (
            f"{count} jobs enqueued at {LATENCY_RATE:g}/s from one connection, each "
            f"INSERT job (enqueued_at = client clock) + INSERT ready + SELECT pg_notify("
            f"'{CHANNEL}') in one transaction, into one idle consumer process that LISTENs "
            "on a second, autocommit connection (psycopg notifies()) and on each notification "
            "claims and finishes one job at a time until none is ready "
            f"[{dialect.describe_claim(1)}; {dialect.finish_text}]. started_at = consumer "
            "clock just before its claim statement; delay = started_at - enqueued_at."
        ),
    }


def _listen(params: dict[str, Any], count: int, messages: Any) -> None:
    """The latency consumer: wake on NOTIFY, then claim and finish until nothing is ready."""
    try:
        import psycopg

        worker = Worker(Postgres(params))
        listener = psycopg.connect(**params, autocommit=True)
        listener.execute(f"LISTEN {CHANNEL}")
        messages.put(("ready", os.getpid(), {}))
        jobs = timeouts = 0
        while jobs < count:
            woken = False
            for _ in listener.notifies(timeout=1.0, stop_after=1):
                woken = True
            timeouts += not woken
            while taken := worker.step(1):
                jobs += taken
        messages.put(("done", os.getpid(), {"timeouts": timeouts, "retries": worker.retries}))
        listener.close()
        worker.close()
    except BaseException:
        messages.put(("error", os.getpid(), {"traceback": traceback.format_exc()}))


@contextmanager
def _processes(
    context: Any, target: Callable[..., None], arguments: tuple[Any, ...], count: int
) -> Iterator[list[Any]]:
    """Started child processes, always reaped (terminated if still running) on exit."""
    processes = [context.Process(target=target, args=arguments, daemon=True) for _ in range(count)]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            if process.pid is not None:
                process.join(timeout=5)
                if process.is_alive():
                    process.terminate()
                    process.join()


def _collect(messages: Any, processes: list[Any], kind: str, timeout: float) -> list[Any]:
    """One ``kind`` message from every process; raise on a child's error or death."""
    deadline = time.monotonic() + timeout
    results: list[Any] = []
    while len(results) < len(processes):
        try:
            got, pid, payload = messages.get(timeout=0.2)
        except queue.Empty:
            dead = [p.pid for p in processes if not p.is_alive() and p.exitcode != 0]
            if dead:
                raise RuntimeError(f"consumer process(es) {dead} died") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {kind!r} from consumers: gave up") from None
            continue
        if got == "error":
            raise RuntimeError(f"consumer {pid} failed:\n{payload['traceback']}")
        if got != kind:
            raise RuntimeError(f"consumer {pid}: expected {kind!r}, got {got!r}")
        results.append(payload)
    return results


def _check_all_finished(dialect: Dialect, count: int, reported: int) -> None:
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {JOB} WHERE finished_at IS NOT NULL), "
            f"(SELECT COUNT(*) FROM {READY}), (SELECT COUNT(*) FROM {CLAIMED})"
        )
        finished, ready, claimed = cursor.fetchone()
        connection.commit()
    finally:
        connection.close()
    if (finished, ready, claimed, reported) != (count, 0, 0, count):
        raise RuntimeError(
            f"drain left {count - finished} unfinished of {count} (ready {ready}, claimed "
            f"{claimed}, consumers reported {reported})"
        )


# -- entry points -----------------------------------------------------------------


def measure(
    vendor: str, connect: dict[str, Any], sizes: dict[str, int], *, tag: str
) -> dict[str, dict[str, Any]]:
    """Raw-driver figures for ``vendor`` on the scratch database ``connect`` points at.

    Keys: enqueue, bulk, drain, drain_batched_100, and latency on PostgreSQL. The
    bench_raw_* tables are created per measurement and dropped at the end, also on
    error. SQLite works in its own file, ``connect["path"] + "-raw-" + tag``, so its WAL
    journal mode stays out of the benchmark's file; that file is deleted afterwards.
    """
    if vendor not in DIALECTS:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {sorted(DIALECTS)}")
    params = dict(connect)
    if vendor == "sqlite":
        safe_tag = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
        params = {"path": f"{connect['path']}-raw-{safe_tag}"}
        _remove_sqlite(params["path"])
    dialect = DIALECTS[vendor](params)
    try:
        metrics = {
            "enqueue": _measure_enqueue(dialect, sizes["enqueue"]),
            "bulk": _measure_bulk(dialect, sizes["bulk"]),
            "drain": _measure_drain(dialect, sizes["drain"], 1),
            f"drain_batched_{CLAIM_BATCH}": _measure_drain(dialect, sizes["drain"], CLAIM_BATCH),
        }
        if vendor == "postgresql":
            metrics["latency"] = _measure_latency(dialect, sizes["latency"])
        return metrics
    finally:
        try:
            _drop(dialect)
        except Exception as exc:
            print(f"warning: could not drop the bench_raw_ tables: {exc}", file=sys.stderr)
        if vendor == "sqlite":
            _remove_sqlite(params["path"])


def _remove_sqlite(path: str) -> None:
    for suffix in SQLITE_SUFFIXES:
        Path(path + suffix).unlink(missing_ok=True)


PG_SERVER: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MARIADB_SERVER: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": ""}
SIZES = {
    False: {"enqueue": 2000, "bulk": 20000, "drain": 10000, "latency": 200},
    True: {"enqueue": 500, "bulk": 5000, "drain": 2000, "latency": 60},
}


@contextmanager
def _scratch(vendor: str) -> Iterator[dict[str, Any]]:
    """A database of our own for a standalone run, dropped on exit."""
    name = f"bench_raw_{os.getpid()}"
    if vendor == "postgresql":
        import psycopg

        with psycopg.connect(**PG_SERVER, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            yield {**PG_SERVER, "dbname": name}
        finally:
            with psycopg.connect(**PG_SERVER, dbname="postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    elif vendor == "mariadb":
        import MySQLdb

        admin = MySQLdb.connect(**MARIADB_SERVER)
        try:
            admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            try:
                yield {**MARIADB_SERVER, "database": name}
            finally:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()
    else:
        directory = tempfile.mkdtemp(prefix="bench_raw_")
        try:
            yield {"path": os.path.join(directory, "bench.sqlite3")}
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _table(vendor: str, metrics: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"raw {vendor}",
        f"{'metric':<20}{'jobs/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'count':>8}{'seconds':>9}",
    ]
    for key, metric in metrics.items():
        rate = f"{metric['jobs_per_s']:.0f}" if "jobs_per_s" in metric else "-"
        cuts = [f"{metric[p]:.1f}" if p in metric else "-" for p in ("p50_ms", "p95_ms", "p99_ms")]
        lines.append(
            f"{key:<20}{rate:>10}{cuts[0]:>9}{cuts[1]:>9}{cuts[2]:>9}"
            f"{metric['count']:>8}{metric['seconds']:>9.2f}"
        )
    lines.append("")
    lines += [f"{key}: {metric['description']}" for key, metric in metrics.items()]
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=sorted(DIALECTS), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # unwind, so the scratch database is dropped
    try:
        with _scratch(args.database) as connect:
            metrics = measure(args.database, connect, SIZES[args.quick], tag="main")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(_table(args.database, metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
