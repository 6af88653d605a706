"""``DjQueueBackend``: the ``django.tasks`` backend that stores jobs in the database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Exists, OuterRef
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from . import retries, unique
from .concurrency import policy_for
from .config import QueueConfig
from .config_loading import load_config
from .exceptions import InvalidPayload
from .ids import new_job_id, parse_job_id
from .models.constraints import QUEUE_NAME_MAX_LENGTH, TASK_PATH_MAX_LENGTH
from .payload import normalize_arguments
from .signals import send_task_signal
from .task import DjQueueTask
from .tasks_registry import remember

TaskCall = tuple[Task, Sequence[Any], Mapping[str, Any]]


class DjQueueBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True
    # Carries dj_queue's per-task options given as @task(...) keyword arguments.
    task_class = DjQueueTask

    # Django builds backends when a module defining a task is imported, so
    # nothing here may touch the database: options are parsed on first use.

    @cached_property
    def config(self) -> QueueConfig:
        """OPTIONS merged with DJ_QUEUE_CONFIG's file and DJ_QUEUE_MODE, validated."""
        return load_config(self.alias, self.options)

    @property
    def database_alias(self) -> str:
        return self.config.database_alias

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        if len(task.queue_name) > QUEUE_NAME_MAX_LENGTH or "*" in task.queue_name:
            raise InvalidTask(
                f"Queue name {task.queue_name!r} must be at most {QUEUE_NAME_MAX_LENGTH} "
                "characters and contain no '*' (which selects queues in worker settings)."
            )
        if len(task.module_path) > TASK_PATH_MAX_LENGTH:
            raise InvalidTask(
                f"Task path {task.module_path!r} is longer than {TASK_PATH_MAX_LENGTH} characters."
            )
        # A bad concurrency or retry declaration fails at the @task line.
        policy_for(task)
        retries.options_for(task)
        unique.policy_for(task)
        remember(task)

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TaskResult:
        return self._enqueue([(task, args, kwargs)], label=None)[0]

    def enqueue_all(self, task_calls: Iterable[TaskCall]) -> list[TaskResult]:
        """Enqueue many task calls in one transaction.

        Every call is validated first: one invalid call rejects the whole batch
        and nothing is written.
        """
        return self._enqueue(list(task_calls), label="task_calls")

    async def aenqueue_all(self, task_calls: Iterable[TaskCall]) -> list[TaskResult]:
        return await sync_to_async(self.enqueue_all, thread_sensitive=True)(list(task_calls))

    def _enqueue(self, task_calls: list[Any], label: str | None) -> list[TaskResult]:
        from .operations.jobs import NewJob, enqueue_jobs
        from .results import new_job_result

        prepared: list[tuple[Task, NewJob]] = []
        validated: set[Task] = set()  # a batch usually repeats one task
        now = timezone.now()
        for index, call in enumerate(task_calls):
            where = f"{label}[{index}]: " if label else ""
            task, args, kwargs = self._unpack_call(call, where)
            try:
                if task not in validated:
                    self.validate_task(task)
                    validated.add(task)
                normalized_args, normalized_kwargs = normalize_arguments(args, kwargs)
                # Read again at each call: function attributes may be set late.
                policy = policy_for(task)
                concurrency = (
                    policy.limit_for(normalized_args, normalized_kwargs) if policy else None
                )
                retry = retries.policy_for(task, self.config.default_retry_policy)
                uniqueness = unique.policy_for(task)
                unique_key = (
                    uniqueness.key_for(normalized_args, normalized_kwargs) if uniqueness else None
                )
            except (InvalidTask, InvalidPayload) as exc:
                if not where:
                    raise
                raise type(exc)(f"{where}{task.module_path}: {exc}") from exc
            new = NewJob(
                id=new_job_id(),
                backend_alias=self.alias,
                task_path=task.module_path,
                queue_name=task.queue_name,
                priority=task.priority,
                args=normalized_args,
                kwargs=normalized_kwargs,
                run_after=task.run_after,
                concurrency=concurrency,
                retry_policy=retry.stored(),
                timeout=retry.timeout,
                unique_key=unique_key,
                unique_until=(
                    now + timedelta(seconds=uniqueness.unique_for)
                    if uniqueness and uniqueness.unique_for
                    else None
                ),
            )
            prepared.append((task, new))
        if not prepared:
            return []
        outcome = enqueue_jobs(
            self.database_alias,
            [new for _, new in prepared],
            now,
            notify=self.config.listen_notify,
            preserve_finished=self.config.preserve_finished_jobs,
        )
        results = []
        holders: dict[Any, TaskResult] = {}
        for task, new in prepared:
            holder = outcome.duplicates.get(new.id)
            if holder is None:
                result = new_job_result(task, new, now, discarded=new.id in outcome.discarded)
                send_task_signal(task_enqueued, type(self), result)
            else:
                # A duplicate: the result of the job holding the key, as it stands.
                if holder not in holders:
                    holders[holder] = self.get_result(str(holder))
                result = holders[holder]
            results.append(result)
        return results

    def _unpack_call(self, call: Any, where: str) -> TaskCall:
        if not isinstance(call, tuple | list) or len(call) != 3:
            raise TypeError(f"{where}expected a (task, args, kwargs) tuple, got {call!r}.")
        task, args, kwargs = call
        if not isinstance(task, Task):
            raise TypeError(f"{where}expected a django.tasks.Task, got {task!r}.")
        if task.backend != self.alias:
            raise InvalidTask(
                f"{where}{task.module_path} belongs to task backend {task.backend!r}; enqueue "
                f"it through that backend, or use .using(backend={self.alias!r})."
            )
        if not isinstance(args, list | tuple) or not isinstance(kwargs, Mapping):
            raise TypeError(f"{where}expected args as a list or tuple and kwargs as a mapping.")
        return task, args, kwargs

    def get_result(self, result_id: str) -> TaskResult:
        from .models import ClaimedExecution, FailedExecution, Job
        from .results import build_result

        job_id = parse_job_id(result_id)
        if job_id is None:
            raise TaskResultDoesNotExist(result_id)
        job = (
            Job.objects.using(self.database_alias)
            .annotate(
                is_claimed=Exists(ClaimedExecution.objects.filter(job_id=OuterRef("pk"))),
                is_failed=Exists(FailedExecution.objects.filter(job_id=OuterRef("pk"))),
            )
            .filter(pk=job_id)
            .first()
        )
        if job is None:
            raise TaskResultDoesNotExist(result_id)
        if job.is_failed:
            status = TaskResultStatus.FAILED
        elif job.is_claimed:
            status = TaskResultStatus.RUNNING
        elif job.finished_at is not None:
            status = TaskResultStatus.SUCCESSFUL
        else:
            status = TaskResultStatus.READY
        return build_result(job, status)

    def check(self, **kwargs: Any) -> list[Any]:
        from .checks import check_backend

        return check_backend(self)
