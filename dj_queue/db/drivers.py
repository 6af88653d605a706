"""One driver per connection, for the connection's vendor."""

from __future__ import annotations

from django.db import connections
from django.utils.module_loading import import_string

from .base import Driver

_DRIVERS = {
    "postgresql": "dj_queue.db.postgresql.PostgreSQLDriver",
    "mysql": "dj_queue.db.mysql.MySQLDriver",
    "sqlite": "dj_queue.db.sqlite.SQLiteDriver",
}


def get_driver(alias: str) -> Driver:
    connection = connections[alias]
    driver: Driver | None = getattr(connection, "_dj_queue_driver", None)
    if driver is None:
        try:
            path = _DRIVERS[connection.vendor]
        except KeyError:
            raise NotImplementedError(
                f"dj_queue does not support the {connection.vendor!r} database of alias "
                f"{alias!r}; use PostgreSQL, MySQL 8+, MariaDB 10.6+ or SQLite."
            ) from None
        # Only the vendor in use is imported: psycopg need not be installed for SQLite.
        driver_class: type[Driver] = import_string(path)
        driver = driver_class(connection)
        connection._dj_queue_driver = driver  # type: ignore[attr-defined]
    return driver
