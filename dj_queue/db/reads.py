"""The SQL behind the read-only figures (``dj_queue.reads``) that differs by vendor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ReadStatements:
    """Mixed into ``Driver``: the statements only the figures need."""

    q: Any
    queue_equals: Callable[[str, str], tuple[str, list[Any]]]

    def distinct_names_statement(self, table: str, limit: int) -> tuple[str, list[Any]]:
        """The first ``limit`` distinct ``queue_name`` values of ``table``, sorted,
        read from an index that starts with the column. MariaDB and MySQL skip
        through the index for this ("loose index scan"); SQLite reads the index."""
        column = self.q("queue_name")
        return (
            f"SELECT DISTINCT {column} FROM {table} ORDER BY {column} LIMIT %s",
            [limit],
        )

    def listed_queue_equals(self, column: str, name: str) -> tuple[str, list[Any]]:
        """The condition matching the rows counted under a listed queue name:
        the exact name, as workers match it (see MySQL for where it differs)."""
        return self.queue_equals(column, name)
