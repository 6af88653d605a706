"""Raw-driver reference for the queue benchmark: the job life cycle the Django systems
go through, written straight against psycopg, MySQLdb and sqlite3, to show what the
database itself allows on this machine.

    .venv/bin/python -m bench.raw --database postgresql|sqlite|mariadb [--quick]

Standalone (bench/raw/__main__.py), it makes its own scratch database (local servers:
PostgreSQL as postgres on 127.0.0.1:5432, MariaDB as root on 127.0.0.1:3306) and
drops it afterwards. bench/run.py calls measure() instead. Nothing here imports Django
or dj_queue: the consumer processes are spawned from a clean interpreter and must stay
cheap to start.

Layout: this module times the measurements and builds the result dicts; base.py holds
the tables, the Dialect interface, the claim/finish worker and the enqueue steps;
consumers.py the spawned consumer processes; postgresql.py, mysql.py and sqlite.py
what differs per database (DDL types, claim/finish SQL, connect, retryable errors).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from typing import Any

from bench.raw import sqlite
from bench.raw.base import (
    BATCH_SIZE,
    CLAIMED,
    JOB,
    READY,
    Dialect,
    drop,
    enqueue_batch,
    enqueue_many,
    enqueue_one,
    reset,
)
from bench.raw.consumers import collect, consume, processes
from bench.raw.mysql import MariaDB
from bench.raw.postgresql import Postgres, measure_latency
from bench.raw.sqlite import SQLite

__all__ = ["DIALECTS", "SIZES", "measure"]

CONSUMERS = 4  # consumer processes in the drain measurements
CLAIM_BATCH = 100  # jobs per claim in drain_batched_100
WARMUP_JOBS = 20  # enqueued before the clock starts, so the first timed job is not the first

DIALECTS: dict[str, type[Dialect]] = {d.vendor: d for d in (Postgres, MariaDB, SQLite)}
SIZES = {  # for a standalone run, by --quick
    False: {"enqueue": 2000, "bulk": 20000, "drain": 10000, "latency": 200},
    True: {"enqueue": 500, "bulk": 5000, "drain": 2000, "latency": 60},
}


def measure(
    vendor: str, connect: dict[str, Any], sizes: dict[str, int], *, tag: str
) -> dict[str, dict[str, Any]]:
    """Raw-driver figures for ``vendor`` on the scratch database ``connect`` points at.

    Keys: enqueue, bulk, drain, drain_batched_100, and latency on PostgreSQL. The
    bench_raw_* tables are created per measurement and dropped at the end, also on
    error. SQLite works in its own file, ``connect["path"] + "-raw-" + tag``, so its
    tables and journal stay out of the benchmark's file; that file is deleted
    afterwards. Its connections use WAL and synchronous=NORMAL, as the Django ones do.
    """
    if vendor not in DIALECTS:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {sorted(DIALECTS)}")
    params = sqlite.own_file(connect, tag) if vendor == "sqlite" else dict(connect)
    dialect = DIALECTS[vendor](params)
    try:
        metrics = {
            "enqueue": _measure_enqueue(dialect, sizes["enqueue"]),
            "bulk": _measure_bulk(dialect, sizes["bulk"]),
            "drain": _measure_drain(dialect, sizes["drain"], 1),
            f"drain_batched_{CLAIM_BATCH}": _measure_drain(dialect, sizes["drain"], CLAIM_BATCH),
        }
        if isinstance(dialect, Postgres):
            metrics["latency"] = measure_latency(dialect, sizes["latency"])
        return metrics
    finally:
        try:
            drop(dialect)
        except Exception as exc:
            print(f"warning: could not drop the bench_raw_ tables: {exc}", file=sys.stderr)
        if vendor == "sqlite":
            sqlite.remove_files(params["path"])


def _throughput(dialect: Dialect, count: int, seconds: float, description: str) -> dict[str, Any]:
    if dialect.connection_text:
        separator = " " if description.endswith(".") else ". "
        description = f"{description}{separator}{dialect.connection_text}"
    return {
        "count": count,
        "seconds": seconds,
        "jobs_per_s": count / seconds,
        "description": description,
    }


def _measure_enqueue(dialect: Dialect, count: int) -> dict[str, Any]:
    reset(dialect)
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        for _ in range(WARMUP_JOBS):
            enqueue_one(dialect, connection, cursor)
        started = time.perf_counter()
        for _ in range(count):
            enqueue_one(dialect, connection, cursor)
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    return _throughput(
        dialect,
        count,
        seconds,
        f"{count} jobs from one connection, one transaction each: INSERT job row + INSERT "
        f"ready row, commit ({WARMUP_JOBS} untimed warm-up jobs first); {dialect.schema_text()}",
    )


def _measure_bulk(dialect: Dialect, count: int) -> dict[str, Any]:
    reset(dialect)
    connection = dialect.connect()
    try:
        cursor = connection.cursor()
        enqueue_batch(dialect, connection, cursor, BATCH_SIZE)  # warm-up
        started = time.perf_counter()
        enqueue_many(dialect, connection, cursor, count)
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    return _throughput(
        dialect,
        count,
        seconds,
        f"{count} jobs from one connection in batches of {BATCH_SIZE}: one multi-row INSERT "
        f"of job rows + one multi-row INSERT of ready rows, one commit per batch (one untimed "
        "warm-up batch first)",
    )


def _measure_drain(dialect: Dialect, count: int, limit: int) -> dict[str, Any]:
    reset(dialect)
    connection = dialect.connect()
    try:
        enqueue_many(dialect, connection, connection.cursor(), count)
    finally:
        connection.close()
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    start = context.Event()
    arguments = (dialect, limit, start, messages)
    with processes(context, consume, arguments, CONSUMERS) as children:
        collect(messages, children, "ready", timeout=60)
        started = time.monotonic()
        start.set()
        results = collect(messages, children, "done", timeout=60 + count / 20)
    seconds = max(result["last_finish"] for result in results) - started
    done = [result["jobs"] for result in results]
    _check_all_finished(dialect, count, sum(done))
    per_claim = "one job" if limit == 1 else f"up to {limit} jobs"
    return {
        **_throughput(
            dialect,
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
