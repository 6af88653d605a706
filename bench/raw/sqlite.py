"""SQLite (sqlite3) for the raw reference: types, session settings, BEGIN IMMEDIATE,
the DELETE ... RETURNING claim, the finish, busy/locked detection, and the private
database file."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.raw.base import CLAIMED, JOB, READY, Dialect, expect_rows

BUSY_TIMEOUT = 5.0  # seconds
SUFFIXES = ("", "-wal", "-shm", "-journal")
# Per connection, as the benchmark's Django settings do (tests/databases.py, its
# init_command), so raw and Django pay the same for a commit.
SESSION = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


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
    connection_text = (
        f"Every connection runs {'; '.join(SESSION)} (as the Django systems' "
        f"init_command) and PRAGMA foreign_keys = ON, busy timeout {BUSY_TIMEOUT:g} s."
    )

    def connect(self) -> Any:
        # isolation_level=None: the driver opens no transactions; begin() does, IMMEDIATE,
        # so a writer waits for the lock up front instead of failing to upgrade later.
        connection = sqlite3.connect(
            self.params["path"], timeout=BUSY_TIMEOUT, isolation_level=None
        )
        connection.execute("PRAGMA foreign_keys = ON")  # as Django's SQLite backend does
        for pragma in SESSION:
            connection.execute(pragma)
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
        expect_rows(cursor, len(job_ids))


def own_file(connect: dict[str, Any], tag: str) -> dict[str, Any]:
    """Parameters for a fresh file beside the benchmark's, ``<path>-raw-<tag>``."""
    safe_tag = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    params = {"path": f"{connect['path']}-raw-{safe_tag}"}
    remove_files(params["path"])
    return params


def remove_files(path: str) -> None:
    for suffix in SUFFIXES:
        Path(path + suffix).unlink(missing_ok=True)
