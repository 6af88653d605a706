"""System checks for dj_queue backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.checks import Error
from django.tasks.exceptions import InvalidTask

from . import retries, unique
from .concurrency import policy_for
from .exceptions import ConfigurationError, InvalidRecurringTask
from .tasks_registry import known_tasks

if TYPE_CHECKING:
    from .backend import DjQueueBackend


def check_backend(backend: DjQueueBackend) -> list[Any]:
    try:
        config = backend.config
    except ConfigurationError as exc:
        return [Error(str(exc), hint="Fix the option named above.", id="dj_queue.E001")]
    errors = _check_task_options(backend) + _check_recurring(backend)
    if config.database_alias not in settings.DATABASES:
        errors.append(
            Error(
                f"TASKS[{backend.alias!r}]['OPTIONS']['database_alias'] is "
                f"{config.database_alias!r}, which is not in DATABASES.",
                hint=f"Add {config.database_alias!r} to DATABASES or name an existing alias.",
                id="dj_queue.E002",
            )
        )
    return errors


def _check_recurring(backend: DjQueueBackend) -> list[Any]:
    from .recurring import static_definitions

    try:
        static_definitions(backend, backend.config.recurring)
    except InvalidRecurringTask as exc:
        return [Error(str(exc), hint="Fix the recurring task named above.", id="dj_queue.E004")]
    return []


def _check_task_options(backend: DjQueueBackend) -> list[Any]:
    """Options set as function attributes after ``@task`` ran escape the check
    at the @task line; every task imported so far is checked again here."""
    errors = []
    for task in known_tasks():
        if task.backend != backend.alias:
            continue
        try:
            policy_for(task)
            retries.options_for(task)
            unique.policy_for(task)
        except InvalidTask as exc:
            errors.append(Error(str(exc), hint="Fix the task's declaration.", id="dj_queue.E003"))
    return errors
