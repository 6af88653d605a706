"""Turning stored jobs into ``django.tasks.TaskResult`` objects."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError

from .exceptions import InvalidPayload
from .models import Job
from .tasks_registry import resolve_task

if TYPE_CHECKING:
    from .operations.jobs import NewJob


def task_for_job(job: Job, task: Task | None = None) -> Task:
    """The Task as it was enqueued: the registered Task with the job's options."""
    task = task or resolve_task(job.task_path)
    stored = {
        "priority": job.priority,
        "queue_name": job.queue_name,
        "run_after": job.run_after,
        "backend": job.backend_alias,
    }
    if all(getattr(task, name) == value for name, value in stored.items()):
        return task
    # Rebuilt field by field rather than with dataclasses.replace(), which would
    # validate again: the call was valid when enqueued, and a later settings
    # change (a queue leaving QUEUES) must not make its record unreadable.
    rebuilt = object.__new__(type(task))
    for field in dataclasses.fields(task):
        object.__setattr__(rebuilt, field.name, stored.get(field.name, getattr(task, field.name)))
    return rebuilt


def build_result(job: Job, status: TaskResultStatus, task: Task | None = None) -> TaskResult:
    if not isinstance(job.args, list) or not isinstance(job.kwargs, dict):
        raise InvalidPayload(
            f"Job {job.id} holds malformed arguments: args must be a JSON array and kwargs "
            "a JSON object."
        )
    result: TaskResult = TaskResult(
        task=task_for_job(job, task),
        id=str(job.id),
        status=status,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        last_attempted_at=job.last_attempted_at,
        args=list(job.args),
        kwargs=dict(job.kwargs),
        backend=job.backend_alias,
        errors=[TaskError(**error) for error in job.errors or []],
        worker_ids=list(job.worker_ids or []),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.return_value)
    return result


def new_job_result(
    task: Task, new: NewJob, enqueued_at: datetime, *, discarded: bool = False
) -> TaskResult:
    """The result of a call just enqueued, without reading it back. A call
    discarded by its concurrency limit is already finished: SUCCESSFUL, never
    started, no attempts, no return value (as ``get_result`` tells it too)."""
    result: TaskResult = TaskResult(
        task=task,
        id=str(new.id),
        status=TaskResultStatus.SUCCESSFUL if discarded else TaskResultStatus.READY,
        enqueued_at=enqueued_at,
        started_at=None,
        finished_at=enqueued_at if discarded else None,
        last_attempted_at=None,
        args=new.args,
        kwargs=new.kwargs,
        backend=new.backend_alias,
        errors=[],
        worker_ids=[],
    )
    if discarded:
        object.__setattr__(result, "_return_value", None)
    return result
