"""MariaDB (MySQLdb) for the raw reference: types, the SELECT ... FOR UPDATE SKIP LOCKED
claim, the finish, and the retryable error codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.raw.base import CLAIMED, JOB, READY, Dialect, expect_rows, marks


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
            f"DELETE FROM {READY} WHERE id IN ({marks(len(rows))})", [row[0] for row in rows]
        )
        job_ids = [row[1] for row in rows]
        values = ", ".join(["(%s, %s, %s)"] * len(rows))
        params = [value for job_id in job_ids for value in (job_id, process_id, now)]
        cursor.execute(
            f"INSERT INTO {CLAIMED} (job_id, process_id, claimed_at) VALUES {values}", params
        )
        return job_ids

    def finish(self, cursor: Any, job_ids: list[Any], started: Any, finished: Any) -> None:
        placeholders = marks(len(job_ids))
        cursor.execute(f"DELETE FROM {CLAIMED} WHERE job_id IN ({placeholders})", job_ids)
        cursor.execute(
            f"UPDATE {JOB} SET started_at = %s, finished_at = %s WHERE id IN ({placeholders})",
            [started, finished, *job_ids],
        )
        expect_rows(cursor, len(job_ids))
