"""Database connections of long-lived runtime threads.

Runtime threads keep their connections open across jobs and polls (reconnecting
per operation would cost more than the work), whatever ``CONN_MAX_AGE`` says;
they drop a connection only once it is broken, so the next use reconnects.
"""

from django.db import connections


def drop_broken_connections() -> None:
    """Close this thread's connections that errored and no longer answer."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.errors_occurred or connection.needs_rollback:
            if connection.in_atomic_block:
                continue  # a user's open transaction: not ours to end
            if not connection.is_usable():
                connection.close()
            else:
                connection.errors_occurred = False


def close_thread_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()
