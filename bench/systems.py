"""The task systems under test in this interpreter, behind one small interface.

Each knows how to enqueue the no-op task through its own backend, how to
pre-fill its table quickly, how to tell when its jobs are done, which
``manage.py`` commands are its runtime, and how long its jobs waited to start.
The dj-queue release from PyPI implements the same interface in its own
virtualenv (bench/peer_child.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from django.db import transaction
from django.db.models import Max, Min
from django.tasks import Task, TaskResultStatus, task_backends
from django.tasks.backends.base import BaseTaskBackend

from bench.benchapp.tasks import noop

PREFILL_BATCH = 500


@dataclass(frozen=True)
class System:
    key: str
    name: str
    task: Task

    # The python (and flags) that runs the runtime commands; empty: this one.
    interpreter: ClassVar[tuple[str, ...]] = ()
    # What window() spans, for the busy figure.
    window_text: ClassVar[str] = "first start -> last finish"

    @property
    def backend(self) -> BaseTaskBackend:
        return task_backends[self.task.backend]

    def enqueue_one(self) -> str:
        return self.task.enqueue().id

    def enqueue_batch(self, size: int) -> None:
        raise NotImplementedError

    def prefill(self, count: int) -> None:
        raise NotImplementedError

    def unfinished(self) -> int:
        raise NotImplementedError

    def failed(self) -> int:
        raise NotImplementedError

    def window(self) -> tuple[datetime, datetime]:
        """(first start, last finish) over every job in the table."""
        raise NotImplementedError

    def runtime_commands(self, processes: int, *, drain: bool) -> list[list[str]]:
        raise NotImplementedError

    def start_delays_ms(self, result_ids: list[str]) -> list[float]:
        """Enqueue-to-start delay of each job, as its backend's results report them."""
        delays = []
        for result_id in result_ids:
            result = self.backend.get_result(result_id)
            assert result.started_at is not None and result.enqueued_at is not None
            delays.append((result.started_at - result.enqueued_at).total_seconds() * 1000)
        return delays


class DjQueue(System):
    def enqueue_batch(self, size: int) -> None:
        self.backend.enqueue_all([(self.task, (), {})] * size)  # type: ignore[attr-defined]

    def prefill(self, count: int) -> None:
        for start in range(0, count, PREFILL_BATCH):
            self.enqueue_batch(min(PREFILL_BATCH, count - start))

    def unfinished(self) -> int:
        from dj_queue.models import Job

        # Also right with preserve_finished_jobs=False, where finished jobs are deleted.
        return Job.objects.filter(finished_at__isnull=True).count()

    def failed(self) -> int:
        from dj_queue.models import FailedExecution

        return FailedExecution.objects.count()

    def window(self) -> tuple[datetime, datetime]:
        from dj_queue.models import Job

        span = Job.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
        return span["first"], span["last"]

    def runtime_commands(self, processes: int, *, drain: bool) -> list[list[str]]:
        # One supervisor; its worker process count and threads come from TASKS OPTIONS.
        return [["dj_queue", "--backend", self.task.backend]]


class DjangoTasksDb(System):
    def enqueue_batch(self, size: int) -> None:
        # No enqueue_all: the closest equivalent is enqueue() in one transaction.
        with transaction.atomic():
            for _ in range(size):
                self.task.enqueue()

    def prefill(self, count: int) -> None:
        from django_tasks_db.models import DBTaskResult, get_date_max

        # The rows enqueue() would write (its pre_save hook sets run_after), in bulk:
        # pre-filling is not what is measured and enqueue() is slow.
        rows: list[DBTaskResult] = [
            DBTaskResult(
                id=uuid.uuid4(),
                args_kwargs={"args": [], "kwargs": {}},
                priority=self.task.priority,
                task_path=self.task.module_path,
                queue_name=self.task.queue_name,
                run_after=get_date_max(),
                backend_name=self.task.backend,
            )
            for _ in range(count)
        ]
        DBTaskResult.objects.bulk_create(rows, batch_size=PREFILL_BATCH)

    def unfinished(self) -> int:
        from django_tasks_db.models import DBTaskResult

        waiting = [TaskResultStatus.READY, TaskResultStatus.RUNNING]
        return DBTaskResult.objects.filter(status__in=waiting).count()

    def failed(self) -> int:
        from django_tasks_db.models import DBTaskResult

        return DBTaskResult.objects.failed().count()

    def window(self) -> tuple[datetime, datetime]:
        from django_tasks_db.models import DBTaskResult

        span = DBTaskResult.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
        return span["first"], span["last"]

    def runtime_commands(self, processes: int, *, drain: bool) -> list[list[str]]:
        command = [
            "db_worker",
            "--backend",
            self.task.backend,
            "--queue-name",
            self.task.queue_name,
            "--interval",
            "0.1",
            "--no-startup-delay",
        ]
        # --batch exits once nothing is left: a drain; an idle runtime must keep polling.
        return [[*command, "--batch"] if drain else command for _ in range(processes)]


def systems() -> tuple[System, System]:
    return (
        DjQueue("dj_queue", "dj_queue", noop),
        DjangoTasksDb("django_tasks_db", "django-tasks-db", noop.using(backend="reference")),
    )


def describe_commands(system: System, processes: int, *, drain: bool) -> list[str]:
    return [
        " ".join(["manage.py", *command])
        for command in system.runtime_commands(processes, drain=drain)
    ]
