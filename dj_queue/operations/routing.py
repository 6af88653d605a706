"""Which database alias holds the queue tables."""

from django.conf import settings
from django.tasks import task_backends

from ..exceptions import ConfigurationError

BACKEND_PATH = "dj_queue.backend.DjQueueBackend"


def dj_queue_backend_aliases() -> list[str]:
    """Task backend aliases served by dj_queue, ``default`` first."""
    tasks = getattr(settings, "TASKS", {}) or {}
    aliases = [alias for alias, params in tasks.items() if params.get("BACKEND") == BACKEND_PATH]
    aliases.sort(key=lambda alias: alias != "default")
    return aliases


def queue_database_alias(backend_alias: str | None = None) -> str:
    """The database alias of ``backend_alias`` (or of the first dj_queue backend),
    as its configuration says once every source is merged."""
    if backend_alias is None:
        aliases = dj_queue_backend_aliases()
        if not aliases:
            return "default"
        backend_alias = aliases[0]
    backend = task_backends[backend_alias]
    try:
        return str(getattr(backend, "database_alias", "default"))
    except ConfigurationError:
        # Reported by the system check; routing must still work to run checks.
        alias = (backend.options or {}).get("database_alias", "default")
        return alias if isinstance(alias, str) else "default"
