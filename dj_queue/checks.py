"""System checks for dj_queue backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.checks import Error

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .backend import DjQueueBackend


def check_backend(backend: DjQueueBackend) -> list[Any]:
    try:
        config = backend.config
    except ConfigurationError as exc:
        return [Error(str(exc), hint="Fix the option named above.", id="dj_queue.E001")]
    if config.database_alias not in settings.DATABASES:
        return [
            Error(
                f"TASKS[{backend.alias!r}]['OPTIONS']['database_alias'] is "
                f"{config.database_alias!r}, which is not in DATABASES.",
                hint=f"Add {config.database_alias!r} to DATABASES or name an existing alias.",
                id="dj_queue.E002",
            )
        ]
    return []
