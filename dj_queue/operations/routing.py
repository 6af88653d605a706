"""Which database alias holds the queue tables."""

from django.conf import settings

BACKEND_PATH = "dj_queue.backend.DjQueueBackend"


def dj_queue_backend_aliases() -> list[str]:
    """Task backend aliases served by dj_queue, ``default`` first."""
    tasks = getattr(settings, "TASKS", {}) or {}
    aliases = [alias for alias, params in tasks.items() if params.get("BACKEND") == BACKEND_PATH]
    aliases.sort(key=lambda alias: alias != "default")
    return aliases


def queue_database_alias(backend_alias: str | None = None) -> str:
    """The database alias of ``backend_alias`` (or of the first dj_queue backend)."""
    tasks = getattr(settings, "TASKS", {}) or {}
    if backend_alias is None:
        aliases = dj_queue_backend_aliases()
        if not aliases:
            return "default"
        backend_alias = aliases[0]
    options = tasks.get(backend_alias, {}).get("OPTIONS", {}) or {}
    alias = options.get("database_alias", "default")
    return alias if isinstance(alias, str) else "default"
