"""The dashboard's buttons: pause and resume a queue, retry and discard a
failure group. Each checks its fields, calls one operation and says what it
did in an admin message; nothing here writes a table itself."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, QueryDict

from ..models.constraints import QUEUE_NAME_MAX_LENGTH, TASK_PATH_MAX_LENGTH
from ..operations.jobs import discard_failed_group, retry_failed_group
from ..operations.queues import pause_queue, resume_queue
from .base import _plural

# The failed execution's column; a longer value cannot name any group.
EXCEPTION_CLASS_MAX_LENGTH = 255


class BadInput(Exception):
    """A request the dashboard cannot act on; its message is the 400's body."""


def required(data: QueryDict, field: str, max_length: int) -> str:
    """A posted field that must be there, and short enough to match a row."""
    value = data.get(field, "")
    if not value:
        raise BadInput(f"The field {field!r} is missing.")
    if len(value) > max_length:
        raise BadInput(f"The field {field!r} is longer than {max_length} characters.")
    return value


# -- queues ---------------------------------------------------------------------------------


def _pause(request: HttpRequest, alias: str, data: QueryDict) -> None:
    name = required(data, "queue", QUEUE_NAME_MAX_LENGTH)
    if pause_queue(alias, name):
        messages.success(request, f"Paused queue {name}.")
    else:
        messages.warning(request, f"Queue {name} was already paused.")


def _resume(request: HttpRequest, alias: str, data: QueryDict) -> None:
    name = required(data, "queue", QUEUE_NAME_MAX_LENGTH)
    if resume_queue(alias, name):
        messages.success(request, f"Resumed queue {name}.")
    else:
        messages.warning(request, f"Queue {name} was not paused.")


# -- failure groups ---------------------------------------------------------------------------


def _group(data: QueryDict) -> tuple[str, str]:
    return (
        required(data, "task_path", TASK_PATH_MAX_LENGTH),
        required(data, "exception_class", EXCEPTION_CLASS_MAX_LENGTH),
    )


def _on_group(
    request: HttpRequest,
    alias: str,
    data: QueryDict,
    operation: Callable[..., int],
    verb: str,
) -> None:
    """Act on every failed job of the group, not only those the panel counted."""
    task_path, exception_class = _group(data)
    done = operation(task_path, exception_class, using=alias)
    group = f"{task_path} ({exception_class})"
    if done:
        messages.success(request, f"{verb} {_plural(done, 'failed job')} of {group}.")
    else:
        messages.warning(request, f"No failed job of {group} was left: nothing {verb.lower()}.")


def _retry_group(request: HttpRequest, alias: str, data: QueryDict) -> None:
    _on_group(request, alias, data, retry_failed_group, "Retried")


def _discard_group(request: HttpRequest, alias: str, data: QueryDict) -> None:
    _on_group(request, alias, data, discard_failed_group, "Discarded")


# -- dispatch ---------------------------------------------------------------------------------

ACTIONS: dict[str, Callable[[HttpRequest, str, QueryDict], None]] = {
    "pause": _pause,
    "resume": _resume,
    "retry_group": _retry_group,
    "discard_group": _discard_group,
}


def run_action(request: HttpRequest, database_alias: str, data: QueryDict) -> None:
    """Run the posted action on the backend's database, or BadInput before any write."""
    name = data.get("action", "")
    if not name:
        raise BadInput("The field 'action' is missing.")
    action = ACTIONS.get(name)
    if action is None:
        raise BadInput(f"Unknown action {name!r}: use one of {', '.join(ACTIONS)}.")
    action(request, database_alias, data)
