"""``DjQueueRouter`` keeps dj_queue's tables on the queue database alias."""

from __future__ import annotations

from typing import Any

from .operations.routing import dj_queue_backend_aliases, queue_database_alias

APP_LABEL = "dj_queue"


def _queue_aliases() -> set[str]:
    aliases = dj_queue_backend_aliases()
    if not aliases:
        return {"default"}
    return {queue_database_alias(alias) for alias in aliases}


class DjQueueRouter:
    """Routes dj_queue's models to the ``database_alias`` of its backend.

    dj_queue's own code always names its database; the router serves the rest
    (the admin, ``migrate``, your own queries on its models) and keeps other
    apps' tables off a dedicated queue database only if another router says so.
    """

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        if model._meta.app_label == APP_LABEL:  # type: ignore[attr-defined]
            return queue_database_alias()
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        labels = {obj1._meta.app_label, obj2._meta.app_label}
        if APP_LABEL in labels:
            return labels == {APP_LABEL}
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if app_label == APP_LABEL:
            return db in _queue_aliases()
        return None
