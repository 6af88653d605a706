"""The values drivers take and give: rows taken off a state table, a completion,
a claim request, and raw job rows turned into ``Job`` instances."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True, slots=True)
class ReadyRow:
    """A row taken off the ready (or scheduled) table, in claim order."""

    row_id: int
    job_id: uuid.UUID
    queue_name: str
    priority: int


@dataclass(frozen=True, slots=True)
class Completion:
    """A claimed job's success, to be recorded if ``process_id`` still holds it."""

    job_id: uuid.UUID
    process_id: int
    return_value: Any
    finished_at: datetime
    preserve: bool  # False: delete the job instead of keeping its result


@dataclass(frozen=True, slots=True)
class CompletionBatch:
    """Successes of one process recorded together: (job id, return value) pairs,
    each recorded only if ``process_id`` still holds that job's claim."""

    process_id: int
    results: tuple[tuple[uuid.UUID, Any], ...]
    finished_at: datetime
    preserve: bool

    @property
    def job_ids(self) -> list[uuid.UUID]:
        return [job_id for job_id, _ in self.results]


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Up to ``limit`` ready jobs of one queue selector, for one worker."""

    selector: str
    limit: int
    skip_locked: bool
    process_id: int
    worker_id: str
    now: datetime


class JobRows:
    """Turns raw rows holding a job's columns (in model field order) into Job
    instances, with the converters the ORM would apply."""

    def __init__(self, connection: BaseDatabaseWrapper, fields: Sequence[Any]) -> None:
        from ..models import Job

        self.connection = connection
        self.names = [field.attname for field in fields]
        self.expressions = [field.get_col(Job._meta.db_table) for field in fields]
        self.converters = []
        for index, column in enumerate(self.expressions):
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((index, found))

    def jobs(self, alias: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        from ..models import Job

        width = len(self.names)
        jobs = []
        for row in rows:
            values = list(row[:width])
            for index, column_converters in self.converters:
                try:
                    for convert in column_converters:
                        values[index] = convert(
                            values[index], self.expressions[index], self.connection
                        )
                except ValueError:
                    # JSON this Python cannot read (an integer of more digits than
                    # int() takes): the job holds None there and fails as malformed,
                    # instead of every job claimed beside it failing to load.
                    values[index] = None
            jobs.append(Job.from_db(alias, self.names, values))
        return jobs
