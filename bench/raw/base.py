"""Driver-independent building blocks of the raw reference: the tables, the Dialect
interface each vendor module fills in, the claim/finish worker and the enqueue steps.

Nothing here imports Django, dj_queue or a driver: the vendor modules import theirs.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

BATCH_SIZE = 500  # jobs per multi-row INSERT in the bulk measurement
MAX_ATTEMPTS = 20  # per transaction, when it hits a deadlock or a busy database
QUEUE_NAME = "default"
TASK_PATH = "bench.tasks.noop"
ARGS = json.dumps({"args": [], "kwargs": {}})

JOB = "bench_raw_job"
READY = "bench_raw_ready"
CLAIMED = "bench_raw_claimed"
TABLES = (CLAIMED, READY, JOB)  # drop order: referencing tables first

INSERT_JOB_COLUMNS = "(id, queue_name, task_path, priority, args, enqueued_at)"
INSERT_READY_COLUMNS = "(job_id, queue_name, priority)"
JOB_ROW = "(%s, %s, %s, %s, %s, %s)"
READY_ROW = "(%s, %s, %s)"


class Dialect:
    """What differs per database: driver, column types, transaction start, claim SQL.

    Picklable by construction (its class + connection parameters), so spawned
    consumers get the same dialect.
    """

    vendor: ClassVar[str]
    types: ClassVar[dict[str, str]]  # uuid, json, ts, autoid, table suffix
    claim_text: ClassVar[str]  # for the descriptions, {op} and {n} filled in
    finish_text: ClassVar[str]
    connection_text: ClassVar[str] = ""  # a sentence on session settings, for descriptions

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


def marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def expect_rows(cursor: Any, count: int) -> None:
    """A finish that touched fewer jobs than it claimed means a broken claim."""
    if cursor.rowcount != count:
        raise RuntimeError(f"finished {cursor.rowcount} job row(s), expected {count}")


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


def reset(dialect: Dialect) -> None:
    """Drop and recreate the tables: every measurement starts from fresh, empty ones."""
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        for table in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in dialect.ddl():
            cursor.execute(statement)
        connection.commit()
    finally:
        connection.close()


def drop(dialect: Dialect) -> None:
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        for table in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        connection.commit()
    finally:
        connection.close()


def enqueue_one(dialect: Dialect, connection: Any, cursor: Any) -> None:
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


def enqueue_batch(dialect: Dialect, connection: Any, cursor: Any, count: int) -> None:
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


def enqueue_many(dialect: Dialect, connection: Any, cursor: Any, count: int) -> None:
    for start in range(0, count, BATCH_SIZE):
        enqueue_batch(dialect, connection, cursor, min(BATCH_SIZE, count - start))
