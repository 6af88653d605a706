"""The public API beyond Django's own task API: queue control, transactional
enqueueing and dynamic recurring tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.tasks import Task, task_backends
from django.utils import timezone

from .backend import DjQueueBackend
from .exceptions import ConfigurationError
from .ids import parse_job_id
from .operations import cancellation
from .operations import queues as queue_operations
from .operations import recurring as recurring_operations
from .payload import normalize_arguments
from .recurring import validate_definition

__all__ = [
    "QueueInfo",
    "cancel_job",
    "cancel_jobs",
    "cancel_requested",
    "enqueue_on_commit",
    "schedule_recurring_task",
    "unschedule_recurring_task",
]


def _database_alias(backend_alias: str) -> str:
    backend = task_backends[backend_alias]
    alias = getattr(backend, "database_alias", None)
    if alias is None:
        raise TypeError(
            f"Task backend {backend_alias!r} is not a dj_queue backend; QueueInfo needs "
            "TASKS[alias]['BACKEND'] = 'dj_queue.backend.DjQueueBackend'."
        )
    return str(alias)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """One queue's figures and controls.

    ``size`` counts ready jobs (scheduled jobs join once due); ``scheduled``
    counts jobs waiting for their time, retries waiting out their backoff
    included; ``blocked`` counts jobs waiting for a slot of their concurrency
    key. ``latency`` is how long, in seconds, the oldest ready job has waited,
    0.0 for an empty queue; pausing does not stop that clock: a paused queue's
    latency keeps growing, which is what an alert on it should see.
    """

    name: str
    backend: str = "default"

    @property
    def _alias(self) -> str:
        return _database_alias(self.backend)

    @classmethod
    def all(cls, backend: str = "default") -> list[QueueInfo]:
        """Every queue with waiting work or a pause."""
        return [
            cls(name, backend)
            for name in queue_operations.known_queue_names(_database_alias(backend))
        ]

    @property
    def size(self) -> int:
        return queue_operations.queue_figures(self._alias, self.name).size

    @property
    def latency(self) -> float:
        oldest = queue_operations.queue_figures(self._alias, self.name).oldest_ready_at
        return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())

    @property
    def blocked(self) -> int:
        return queue_operations.blocked_count(self._alias, self.name)

    @property
    def scheduled(self) -> int:
        """Jobs waiting for their ``run_after`` time, retries waiting out their backoff included."""
        return queue_operations.scheduled_count(self._alias, self.name)

    @property
    def paused(self) -> bool:
        return queue_operations.is_paused(self._alias, self.name)

    def figures(self) -> dict[str, Any]:
        """Size, blocked count, latency and paused state read together."""
        figures = queue_operations.queue_figures(self._alias, self.name)
        oldest = figures.oldest_ready_at
        latency = 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())
        return {
            "name": self.name,
            "size": figures.size,
            "blocked": figures.blocked,
            "scheduled": figures.scheduled,
            "latency": latency,
            "paused": figures.paused,
        }

    def pause(self) -> bool:
        """Workers stop claiming from this queue; enqueueing still works."""
        return queue_operations.pause_queue(self._alias, self.name)

    def resume(self) -> bool:
        return queue_operations.resume_queue(self._alias, self.name)

    def clear(self) -> int:
        """Discard every ready job of this queue; returns how many."""
        return queue_operations.clear_queue(self._alias, self.name)


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Enqueue ``task`` once the caller's transaction commits; never if it rolls back.

    The transaction that matters is the caller's, wherever the queue tables live:
    the hook is registered on the connection that is inside ``atomic()`` (the
    default database first). Outside any transaction the task is enqueued at
    once. The task and its arguments are checked now, so a bad call fails here,
    in the caller's code, not later in a commit hook.
    """
    task.get_backend().validate_task(task)
    normalize_arguments(args, kwargs)
    transaction.on_commit(lambda: task.enqueue(*args, **kwargs), using=_callers_alias())


def _callers_alias() -> str:
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    for alias in connections:
        if connections[alias].in_atomic_block:
            return alias
    return DEFAULT_DB_ALIAS


def _dynamic_backend(backend_alias: str) -> DjQueueBackend:
    backend = task_backends[backend_alias]
    if not isinstance(backend, DjQueueBackend):
        raise TypeError(
            f"Task backend {backend_alias!r} is not a dj_queue backend; recurring tasks need "
            "TASKS[alias]['BACKEND'] = 'dj_queue.backend.DjQueueBackend'."
        )
    if not backend.config.scheduler.dynamic_tasks_enabled:
        raise ConfigurationError(
            f"Dynamic recurring tasks are off for backend {backend_alias!r}: set "
            f"TASKS[{backend_alias!r}]['OPTIONS']['scheduler']['dynamic_tasks_enabled'] = True "
            "(or scheduler.dynamic_tasks_enabled: true in the YAML file)."
        )
    return backend


def schedule_recurring_task(
    key: str,
    task_path: str | Task,
    schedule: str,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
    description: str = "",
    backend: str = "default",
) -> bool:
    """Create or update the dynamic recurring task ``key``; True if created.

    Validated like a static task (schedule, task path, arguments, queue and
    priority), nothing written on error. A running scheduler picks the change
    up within its polling interval. Needs ``scheduler.dynamic_tasks_enabled``;
    a static key cannot be changed here."""
    queue_backend = _dynamic_backend(backend)
    path = task_path.module_path if isinstance(task_path, Task) else task_path
    definition = validate_definition(
        queue_backend,
        key,
        path,
        schedule,
        args=args,
        kwargs=kwargs,
        queue_name=queue_name,
        priority=priority,
        description=description,
    )
    return recurring_operations.save_dynamic_task(queue_backend.database_alias, definition)


def unschedule_recurring_task(key: str, *, backend: str = "default") -> bool:
    """Remove the dynamic recurring task ``key``; False if there was none.
    Needs ``scheduler.dynamic_tasks_enabled``; a static key cannot be removed here."""
    queue_backend = _dynamic_backend(backend)
    return recurring_operations.delete_dynamic_task(queue_backend.database_alias, key)


def cancel_job(job_id: str, *, backend: str = "default") -> bool:
    """Cancel one job: a waiting job ends FAILED with JobCancelledError now; a
    running one is asked to stop and ends so once its worker notices (within
    about a polling interval). False for a finished job (cancelling twice is
    harmless); TaskResultDoesNotExist for an id that names no job."""
    from django.tasks.exceptions import TaskResultDoesNotExist

    from .models import Job

    alias = _database_alias(backend)
    parsed = parse_job_id(job_id)
    if parsed is None:
        raise TaskResultDoesNotExist(job_id)
    if cancellation.cancel_jobs(alias, [parsed]):
        return True
    if not Job.objects.using(alias).filter(pk=parsed).exists():
        raise TaskResultDoesNotExist(job_id)
    return False


def cancel_jobs(job_ids: Sequence[str], *, backend: str = "default") -> int:
    """Cancel many jobs (as ``cancel_job``); returns how many were cancelled or
    asked to stop. Finished jobs and ids that name no job are skipped."""
    parsed = [job_id for value in job_ids if (job_id := parse_job_id(value)) is not None]
    return cancellation.cancel_jobs(_database_alias(backend), parsed)


def cancel_requested(job_id: str, *, backend: str = "default") -> bool:
    """Whether the running job ``job_id`` has been asked to stop: a task that
    wants to wind down on its own terms can poll this between steps."""
    parsed = parse_job_id(job_id)
    return parsed is not None and cancellation.cancel_requested(_database_alias(backend), parsed)
