"""``DjQueueTask``: the Task class of dj_queue backends.

On Django 6.1, ``@task(...)`` hands keyword arguments it does not know to the
backend's ``task_class``; these fields receive dj_queue's per-task options. On
Django 6.0 (or anywhere) the same options can be set as attributes of the
wrapped function instead; ``dj_queue.declarations`` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.tasks import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class DjQueueTask(Task):
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    concurrency_duration: float | None = None
    on_conflict: str | None = None
    max_attempts: int | None = None
    retry_delay: float | None = None
    retry_max_delay: float | None = None
    retry_jitter: bool | None = None
    retry_backoff: Any = None
    retry_on: Any = None
    timeout: float | None = None
    unique_key: Any = None
    unique_for: float | None = None
