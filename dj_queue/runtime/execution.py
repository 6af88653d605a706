"""Running one claimed job and recording its outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, InterfaceError
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

from ..models import Job
from ..operations.jobs import JobError, complete_job, fail_job
from ..payload import normalize_payload
from ..results import build_result
from ..signals import send_task_signal
from ..tasks_registry import resolve_task
from .connections import drop_broken_connections

logger = logging.getLogger("dj_queue")


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    alias: str
    process_id: int
    preserve_finished_jobs: bool
    # True once the worker is shutting down: recording an outcome stops retrying.
    stopping: Callable[[], bool]


def execute_job(job: Job, context: ExecutionContext) -> None:
    """Run ``job``'s task and record the outcome; never raises for the job's sake."""
    try:
        task = resolve_task(job.task_path)
        task_result = build_result(job, TaskResultStatus.RUNNING, task)
    except Exception as exc:
        # A row that names no task, or holds what the task cannot take, fails
        # the job, never the worker.
        error = JobError.from_exception(exc)
        _record(context, lambda: fail_job(context.alias, job.id, context.process_id, error))
        logger.error("job %s (%s) cannot run: %s", job.id, job.task_path, exc)
        return

    sender = type(task.get_backend())
    send_task_signal(task_started, sender, task_result)
    try:
        value = _call(task, task_result)
        return_value = normalize_payload(value, "return value")
    except BaseException as exc:  # the task's own SystemExit fails its job too
        error = JobError.from_exception(exc)
        _record(context, lambda: fail_job(context.alias, job.id, context.process_id, error))
        _mark(task_result, TaskResultStatus.FAILED)
        task_result.errors.append(
            TaskError(exception_class_path=error.exception_class_path, traceback=error.traceback)
        )
        # Sent inside the except block: Django's log receiver reads the active exception.
        send_task_signal(task_finished, sender, task_result)
    else:
        _record(
            context,
            lambda: complete_job(
                context.alias,
                job.id,
                context.process_id,
                return_value,
                preserve=context.preserve_finished_jobs,
            ),
        )
        _mark(task_result, TaskResultStatus.SUCCESSFUL)
        object.__setattr__(task_result, "_return_value", return_value)
        send_task_signal(task_finished, sender, task_result)
    finally:
        drop_broken_connections()


def _call(task: Task, task_result: TaskResult) -> Any:
    if task.takes_context:
        return task.call(
            TaskContext(task_result=task_result), *task_result.args, **task_result.kwargs
        )
    return task.call(*task_result.args, **task_result.kwargs)


def _mark(task_result: TaskResult, status: TaskResultStatus) -> None:
    object.__setattr__(task_result, "status", status)
    object.__setattr__(task_result, "finished_at", timezone.now())


def _record(context: ExecutionContext, write: Callable[[], bool]) -> None:
    """Write a job's outcome, retrying through database errors.

    Giving up would leave the job claimed forever, so this keeps trying while
    the worker lives; once it is stopping, the claim is left to deregistration
    (or, if the process dies, to pruning), which fails the job.
    """
    delay = 0.1
    while True:
        try:
            if not write():
                logger.warning(
                    "a job's claim was taken back before it finished "
                    "(its process was presumed dead); the outcome was not recorded"
                )
            return
        except (DatabaseError, InterfaceError) as exc:
            drop_broken_connections()
            if context.stopping():
                logger.error("could not record a job's outcome: %s", exc)
                return
            logger.warning("recording a job's outcome failed (%s); retrying", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
