"""The database's clock, in UTC on every vendor."""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.functions import Now
from django.db.models.sql.compiler import SQLCompiler


class DatabaseNow(Now):
    """``Now()`` that is UTC on MySQL too.

    Django renders ``Now()`` on MySQL as ``CURRENT_TIMESTAMP``, which is in the
    session's time zone: heartbeats would be stored off by the zone's offset and
    jump at daylight-saving changes, when every live process would look dead.
    """

    def as_mysql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        return "UTC_TIMESTAMP(6)", ()
