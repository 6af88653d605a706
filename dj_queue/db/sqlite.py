from typing import Any

from .base import Driver


class SQLiteDriver(Driver):
    """SQLite has one writer at a time and no row locks.

    Taking rows is a single ``DELETE … RETURNING``: the statement that chooses
    the rows is the one that takes the write lock, so two claimers can never
    choose the same row.
    """

    vendor = "sqlite"
    delete_returning = True

    def queue_prefix(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        # LIKE is case-insensitive on SQLite; compare the prefix exactly instead.
        return f"substr({column}, 1, %s) = %s", [len(prefix), prefix]

    def json_append(self, column: str) -> str:
        return f"json_insert({column}, '$[#]', %s)"

    def is_transient(self, exc: BaseException) -> bool:
        message = str(exc).lower()
        return "database is locked" in message or "database table is locked" in message
