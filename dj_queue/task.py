"""``DjQueueTask``: the Task class of dj_queue backends.

On Django 6.1, ``@task(...)`` hands keyword arguments it does not know to the
backend's ``task_class``; these fields receive dj_queue's per-task options. On
Django 6.0 (or anywhere) the same options can be set as attributes of the
wrapped function instead; ``dj_queue.concurrency.declared_options`` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.tasks import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class DjQueueTask(Task):
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    concurrency_duration: float | None = None
    on_conflict: str | None = None
