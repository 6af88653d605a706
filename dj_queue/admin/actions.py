"""The helpers behind the admin actions: failed-job operations, pausing and
resuming queues, and the messages that say what an action did."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..operations.concurrency import release_blocked_jobs
from ..operations.queues import pause_queue, resume_queue
from ..operations.routing import queue_database_alias
from .base import _plural, _report


def _selection_size(queryset: QuerySet[Any]) -> int | None:
    """How many rows an action was given, or None past the count limit
    ("select all" over a huge list, which is not counted)."""
    from . import COUNT_LIMIT  # read when called, as the paginator reads it

    size = queryset.order_by().values("pk")[: COUNT_LIMIT + 1].count()
    return None if size > COUNT_LIMIT else size


def _skipped_note(selected: int | None, done: int, why: str) -> str:
    """`` Skipped 2 selected jobs that were not failed.``, or nothing."""
    if selected is None:
        return f" Selected jobs that were {why} were skipped."
    skipped = selected - done
    if skipped <= 0:
        return ""
    verb = "was" if skipped == 1 else "were"
    return f" Skipped {_plural(skipped, 'selected job')} that {verb} {why}."


def _act_on_failed(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    job_ids: list[uuid.UUID],
    selected: int | None,
    why: str,
    operation: Callable[..., int],
    verb: str,
) -> None:
    """Run a bulk failed-job operation and tell the user what it did."""
    done = operation(job_ids, using=queue_database_alias())
    note = _skipped_note(selected, done, why)
    _report(modeladmin, request, done, f"{verb} {_plural(done, 'failed job')}.{note}")


def _set_paused(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    names: Iterable[str],
    operation: Callable[[str, str], bool],
    done_verb: str,
    unchanged: str,
) -> None:
    alias = queue_database_alias()
    changed: list[str] = []
    untouched: list[str] = []
    for name in sorted(set(names)):
        (changed if operation(alias, name) else untouched).append(name)
    parts = []
    if changed:
        parts.append(f"{done_verb} {_plural(len(changed), 'queue')}: {', '.join(changed)}.")
    if untouched:
        parts.append(f"{unchanged}: {', '.join(untouched)}.")
    _report(modeladmin, request, len(changed), " ".join(parts) or "No queues selected.")


def _pause(modeladmin: admin.ModelAdmin, request: HttpRequest, names: Iterable[str]) -> None:
    _set_paused(modeladmin, request, names, pause_queue, "Paused", "Already paused")


def _resume(modeladmin: admin.ModelAdmin, request: HttpRequest, names: Iterable[str]) -> None:
    _set_paused(modeladmin, request, names, resume_queue, "Resumed", "Not paused")


def _release_blocked(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    job_ids: list[uuid.UUID],
    queryset: QuerySet[Any],
) -> None:
    """Release blocked jobs by hand and tell the user what that means."""
    selected = _selection_size(queryset)
    done = release_blocked_jobs(job_ids, using=queue_database_alias())
    note = _skipped_note(selected, done, "not blocked")
    _report(
        modeladmin,
        request,
        done,
        f"Released {_plural(done, 'blocked job')} to run now, outside their concurrency "
        f"limits.{note}",
    )
