from .base import Driver

# serialization_failure, deadlock_detected, lock_not_available
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}


class PostgreSQLDriver(Driver):
    vendor = "postgresql"
    delete_returning = True

    def json_append(self, column: str) -> str:
        return f"{column} || jsonb_build_array(%s::text)"

    def is_transient(self, exc: BaseException) -> bool:
        cause = exc.__cause__ or exc
        return getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES
