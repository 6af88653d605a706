"""The figures the dashboard, ``stats.json`` and the Prometheus metrics show:
small frozen dataclasses, read by the functions of ``dj_queue.reads``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Rows counted at most for one figure; beyond it the figure says "10,000+".
COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class BoundedCount:
    """A count that stopped at a cap: ``value`` is exact unless ``capped``, and
    then a lower bound (the cap, or what a capped sample held)."""

    value: int
    capped: bool = False

    @property
    def label(self) -> str:
        return f"{self.value:,}+" if self.capped else f"{self.value:,}"

    def __str__(self) -> str:
        return self.label

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "capped": self.capped, "label": self.label}


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """One queue: how many jobs wait in each state, how long the oldest ready
    job has waited (``latency``, seconds; 0.0 when none is ready), paused or not."""

    name: str
    ready: BoundedCount
    scheduled: BoundedCount
    running: BoundedCount
    blocked: BoundedCount
    failed: BoundedCount
    latency: float
    paused: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ready": self.ready.as_json(),
            "scheduled": self.scheduled.as_json(),
            "running": self.running.as_json(),
            "blocked": self.blocked.as_json(),
            "failed": self.failed.as_json(),
            "latency": self.latency,
            "paused": self.paused,
        }


@dataclass(frozen=True, slots=True)
class MinuteThroughput:
    """Jobs that ended in one minute (``start`` is its first second, UTC)."""

    start: datetime
    succeeded: int
    failed: int

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "succeeded": self.succeeded, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class FinishedTotal:
    """Every job of one queue that ever ended with ``status`` ("succeeded" or
    "failed"), counted by the runtime as it recorded them: it survives
    restarts and the pruning of finished jobs."""

    queue_name: str
    status: str
    count: int

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.queue_name, "status": self.status, "count": self.count}


@dataclass(frozen=True, slots=True)
class ProcessSummary:
    """A registered runtime process and the jobs it holds (``held`` counts
    them; ``held_job_ids`` names the first few)."""

    id: int
    kind: str
    name: str
    hostname: str
    pid: int
    heartbeat_age: float  # seconds since its last heartbeat
    held: BoundedCount
    held_job_ids: tuple[uuid.UUID, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "hostname": self.hostname,
            "pid": self.pid,
            "heartbeat_age": self.heartbeat_age,
            "held": self.held.as_json(),
            "held_job_ids": [str(job_id) for job_id in self.held_job_ids],
        }


@dataclass(frozen=True, slots=True)
class RecurringSummary:
    key: str
    task_path: str
    schedule: str
    static: bool
    next_run: datetime | None  # None: the schedule or its time zone cannot be read
    last_run_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "task_path": self.task_path,
            "schedule": self.schedule,
            "static": self.static,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
        }


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed jobs of one task that raised one exception class, among the most
    recent failures read (``count`` is within that sample)."""

    task_path: str
    exception_class: str
    count: int
    latest_at: datetime
    latest_message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "task_path": self.task_path,
            "exception_class": self.exception_class,
            "count": self.count,
            "latest_at": self.latest_at.isoformat(),
            "latest_message": self.latest_message,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything about one dj_queue backend read at ``taken_at``.

    Queue figures come from the backend's database, which backends sharing one
    database share; processes and finished totals are the backend's own."""

    backend: str
    database_alias: str
    taken_at: datetime
    queues: tuple[QueueSummary, ...]
    processes: tuple[ProcessSummary, ...]
    finished_totals: tuple[FinishedTotal, ...]
    # The parts only the dashboard shows: empty in a metrics snapshot.
    throughput: tuple[MinuteThroughput, ...] = ()
    recurring: tuple[RecurringSummary, ...] = ()
    failure_groups: tuple[FailureGroup, ...] = ()
    # How many of the most recent failures ``failure_groups`` was built from.
    failures_sampled: int = 0

    def process_counts(self) -> dict[str, int]:
        """Live processes by kind, every kind present (0 when none runs)."""
        from ..models import Process

        counts = {kind: 0 for kind in Process.Kind.values}
        for process in self.processes:
            counts[process.kind] = counts.get(process.kind, 0) + 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "database_alias": self.database_alias,
            "taken_at": self.taken_at.isoformat(),
            "queues": [queue.as_json() for queue in self.queues],
            "processes": [process.as_json() for process in self.processes],
            "process_counts": self.process_counts(),
            "finished_totals": [total.as_json() for total in self.finished_totals],
            "throughput": [minute.as_json() for minute in self.throughput],
            "recurring": [task.as_json() for task in self.recurring],
            "failure_groups": [group.as_json() for group in self.failure_groups],
            "failures_sampled": self.failures_sampled,
        }
