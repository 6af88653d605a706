"""Recurring tasks: cron schedules and validated definitions.

A recurring task names a registered ``django.tasks.Task`` by its path, a cron
schedule (croniter's syntax: five fields, an optional sixth for seconds, or
``@hourly``-style aliases) and the JSON arguments of each call. Definitions come
from ``OPTIONS["recurring"]`` (static) or from ``dj_queue.api`` (dynamic); both
pass through ``validate_definition`` before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.tasks import Task
from django.tasks.exceptions import InvalidTask

from .concurrency import policy_for
from .cron import check_schedule
from .exceptions import InvalidPayload, InvalidRecurringTask, TaskNotResolvable
from .payload import normalize_arguments
from .tasks_registry import resolve_task

if TYPE_CHECKING:
    from .backend import DjQueueBackend
    from .config import RecurringTaskConfig

KEY_MAX_LENGTH = 255


@dataclass(frozen=True, slots=True)
class RecurringDefinition:
    """A recurring task that passed validation: what the table row holds."""

    key: str
    task_path: str
    schedule: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue_name: str | None = None
    priority: int | None = None
    description: str = ""

    def row_values(self) -> dict[str, Any]:
        return {
            "task_path": self.task_path,
            "schedule": self.schedule,
            "args": self.args,
            "kwargs": self.kwargs,
            "queue_name": self.queue_name,
            "priority": self.priority,
            "description": self.description,
        }


def configured_task(task: Task, queue_name: str | None, priority: int | None) -> Task:
    """The task with a recurring entry's queue and priority, validated by its backend."""
    options: dict[str, Any] = {}
    if queue_name is not None:
        options["queue_name"] = queue_name
    if priority is not None:
        options["priority"] = priority
    return task.using(**options) if options else task


def validate_definition(
    backend: DjQueueBackend,
    key: object,
    task_path: object,
    schedule: object,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
    description: str = "",
    where: str = "recurring task",
) -> RecurringDefinition:
    """A definition checked as an enqueue of it would be checked, every error
    naming the key and the field; nothing is written here."""
    if not isinstance(key, str) or not key.strip() or len(key) > KEY_MAX_LENGTH:
        raise InvalidRecurringTask(
            f"{where}: the key must be a non-empty string of at most {KEY_MAX_LENGTH} "
            f"characters, got {key!r}."
        )
    named = f"{where} {key!r}"
    check_schedule(schedule, f"{named}: schedule")
    assert isinstance(schedule, str)
    if not isinstance(task_path, str) or not task_path:
        raise InvalidRecurringTask(f"{named}: task_path must be a dotted path, got {task_path!r}.")
    try:
        task = resolve_task(task_path)
    except TaskNotResolvable as exc:
        raise InvalidRecurringTask(f"{named}: task_path: {exc}") from None
    if task.backend != backend.alias:
        raise InvalidRecurringTask(
            f"{named}: task_path {task_path!r} is a task of backend {task.backend!r}, not "
            f"{backend.alias!r}; define it with @task(backend={backend.alias!r}) or schedule "
            "it on its own backend."
        )
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise InvalidRecurringTask(f"{named}: priority must be a whole number, got {priority!r}.")
    if queue_name is not None and not isinstance(queue_name, str):
        raise InvalidRecurringTask(f"{named}: queue_name must be a string, got {queue_name!r}.")
    try:
        configured = configured_task(task, queue_name, priority)
    except InvalidTask as exc:
        field_name = "queue_name" if queue_name is not None else "priority"
        raise InvalidRecurringTask(f"{named}: {field_name}: {exc}") from None
    if not isinstance(args, list | tuple):
        raise InvalidRecurringTask(f"{named}: args must be a list, got {args!r}.")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InvalidRecurringTask(f"{named}: kwargs must be a mapping, got {kwargs!r}.")
    try:
        normalized_args, normalized_kwargs = normalize_arguments(args, kwargs or {})
    except InvalidPayload as exc:
        raise InvalidRecurringTask(f"{named}: {exc}") from None
    try:
        policy = policy_for(configured)
        if policy is not None:
            policy.limit_for(normalized_args, normalized_kwargs)
    except InvalidTask as exc:
        raise InvalidRecurringTask(f"{named}: args/kwargs: {exc}") from None
    if not isinstance(description, str):
        raise InvalidRecurringTask(f"{named}: description must be a string.")
    return RecurringDefinition(
        key=key,
        task_path=task_path,
        schedule=schedule,
        args=normalized_args,
        kwargs=normalized_kwargs,
        queue_name=queue_name,
        priority=priority,
        description=description,
    )


def static_definitions(
    backend: DjQueueBackend, entries: Sequence[RecurringTaskConfig]
) -> list[RecurringDefinition]:
    """A configuration's ``recurring`` entries, validated one by one."""
    where = "recurring task (OPTIONS['recurring'] or the YAML file's recurring:)"
    return [
        validate_definition(
            backend,
            entry.key,
            entry.task_path,
            entry.schedule,
            args=list(entry.args),
            kwargs=dict(entry.kwargs),
            queue_name=entry.queue_name,
            priority=entry.priority,
            description=entry.description,
            where=where,
        )
        for entry in entries
    ]
