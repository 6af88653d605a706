from typing import Any

from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from .base import Driver, _like_prefix

# ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
_TRANSIENT_CODES = {1213, 1205}


class MySQLDriver(Driver):
    """MySQL 8+ and MariaDB 10.6+.

    MySQL cannot delete from a table it reads in a subquery of the same
    statement, so taking rows is a locking SELECT followed by a DELETE by
    primary key.
    """

    vendor = "mysql"
    # Django connects with CLIENT_FOUND_ROWS: a duplicate key "updated" to itself
    # counts as a row, like an insert.
    reports_inserted_rows = False

    # Text columns usually have a case-insensitive, space-padded collation, under
    # which "Email" and "email " would be the queue "email". Each comparison is
    # made twice: as written, so the index serves it, then on the bytes, exactly.
    def queue_equals(self, column: str, name: str) -> tuple[str, list[Any]]:
        return f"{column} = %s AND BINARY {column} = BINARY %s", [name, name]

    def queue_prefix(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        pattern = _like_prefix(prefix)
        return (
            f"{column} LIKE %s ESCAPE '!' AND BINARY {column} LIKE BINARY %s ESCAPE '!'",
            [pattern, pattern],
        )

    def queue_name_filters(self, name: str) -> list[Any]:
        exact = RawSQL(
            f"BINARY {self.q('queue_name')} = BINARY %s", [name], output_field=BooleanField()
        )
        return [Q(queue_name=name), exact]

    def queue_not_paused(self, column: str) -> str:
        return (
            f"BINARY {column} NOT IN (SELECT BINARY {self.q('queue_name')} FROM {self.pause_table})"
        )

    def if_taken_do_nothing(self, unique: str) -> str:
        # A no-op update instead of INSERT IGNORE, which would also silence
        # data errors (truncation) as warnings.
        return f"ON DUPLICATE KEY UPDATE {self.q(unique)} = {self.q(unique)}"

    def held_by_process(self) -> str:
        # "+ 0" keeps the optimizer off the process_id index: scanning it would
        # lock every claim row of the process, so two threads of one worker
        # finishing jobs at once would deadlock on each other's rows.
        return f"{self.q('process_id')} + 0 = %s"

    def json_append(self, column: str) -> str:
        return f"JSON_ARRAY_APPEND({column}, '$', %s)"

    def is_transient(self, exc: BaseException) -> bool:
        cause = exc.__cause__ or exc
        args: tuple[object, ...] = getattr(cause, "args", ())
        return bool(args) and args[0] in _TRANSIENT_CODES
