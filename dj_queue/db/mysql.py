from .base import Driver

# ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
_TRANSIENT_CODES = {1213, 1205}


class MySQLDriver(Driver):
    """MySQL 8+ and MariaDB 10.6+.

    MySQL cannot delete from a table it reads in a subquery of the same
    statement, so taking rows is a locking SELECT followed by a DELETE by
    primary key.
    """

    vendor = "mysql"

    def json_append(self, column: str) -> str:
        return f"JSON_ARRAY_APPEND({column}, '$', %s)"

    def is_transient(self, exc: BaseException) -> bool:
        cause = exc.__cause__ or exc
        args: tuple[object, ...] = getattr(cause, "args", ())
        return bool(args) and args[0] in _TRANSIENT_CODES
