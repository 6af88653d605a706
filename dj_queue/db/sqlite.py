import threading
from contextlib import AbstractContextManager
from typing import Any

from .base import Driver

# One lock per database file, shared by every thread of the process.
_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


class SQLiteDriver(Driver):
    """SQLite has one writer at a time and no row locks.

    Taking rows is a single ``DELETE … RETURNING``: the statement that chooses
    the rows is the one that takes the write lock, so two claimers can never
    choose the same row.
    """

    vendor = "sqlite"
    delete_returning = True
    update_returning = True
    probe_before_write = True

    def serialized(self) -> AbstractContextManager[Any]:
        """Threads of one process take turns in Python before asking SQLite for
        its write lock: a thread SQLite makes wait sleeps 1, 2, 5, 10 … ms between
        tries, far longer than a queue transaction lasts. Other processes still
        meet SQLite's own busy timeout."""
        name = str(self.connection.settings_dict["NAME"])
        with _write_locks_guard:
            lock = _write_locks.setdefault(name, threading.RLock())
        return lock

    def use_wal(self) -> str | None:
        """Switch the file to WAL: a commit then costs one fsync instead of two,
        and readers no longer block the writer. The mode is stored in the file,
        so this happens once per database; an in-memory database keeps its own."""
        with self.connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            mode = str(cursor.fetchone()[0]).lower()
            if mode in ("wal", "memory"):
                return None
            cursor.execute("PRAGMA journal_mode=WAL")
            switched = str(cursor.fetchone()[0]).lower() == "wal"
        return mode if switched else None

    def queue_prefix(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        # LIKE is case-insensitive on SQLite; compare the prefix exactly instead.
        return f"substr({column}, 1, %s) = %s", [len(prefix), prefix]

    def json_append(self, column: str) -> str:
        return f"json_insert({column}, '$[#]', %s)"

    def is_transient(self, exc: BaseException) -> bool:
        message = str(exc).lower()
        return "database is locked" in message or "database table is locked" in message
