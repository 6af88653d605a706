"""The control tables' pages: recurring tasks, semaphores and pauses. A pause
is the one row the admin adds or deletes, through the operations layer."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.tasks import task_backends
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString

from ..cron import Schedule, time_zone
from ..db import get_driver
from ..exceptions import ConfigurationError
from ..models import Pause, RecurringExecution, RecurringTask
from ..operations.queues import pause_queue, resume_queue
from ..operations.routing import dj_queue_backend_aliases, queue_database_alias
from .actions import _resume
from .base import QueueModelAdmin, _json_block


class RecurringTaskAdmin(QueueModelAdmin):
    list_display = (
        "key",
        "task_path",
        "schedule",
        "kind",
        "next_run",
        "last_run_at",
        "last_job",
        "queue_name",
        "priority",
    )
    list_filter = ("static",)
    search_fields = ("key", "task_path")
    ordering = ("key",)
    readonly_fields = ("kind", "next_run", "last_job", "args_display", "kwargs_display")
    fields = (
        "key",
        "task_path",
        "schedule",
        "kind",
        "next_run",
        "last_run_at",
        "last_job",
        "args_display",
        "kwargs_display",
        "queue_name",
        "priority",
        "description",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The job of the latest slot fired, in the page's one query.
        last_job = RecurringExecution.objects.filter(task_key=OuterRef("key")).order_by("-run_at")
        return (
            super()
            .get_queryset(request)
            .annotate(last_job_id=Subquery(last_job.values("job_id")[:1]))
        )

    @admin.display(description="kind", ordering="static")
    def kind(self, obj: RecurringTask) -> str:
        return "static" if obj.static else "dynamic"

    @admin.display(description="next run")
    def next_run(self, obj: RecurringTask) -> str:
        try:
            upcoming = Schedule(obj.schedule, _schedule_zone()).following(timezone.now())
        except (ValueError, KeyError):
            return "invalid schedule"
        return str(date_format(timezone.localtime(upcoming), "DATETIME_FORMAT"))

    @admin.display(description="last job")
    def last_job(self, obj: RecurringTask) -> SafeString | str:
        job_id = getattr(obj, "last_job_id", None)
        return self.job_link(job_id) if job_id else "—"

    @admin.display(description="args")
    def args_display(self, obj: RecurringTask) -> SafeString:
        return _json_block(obj.args)

    @admin.display(description="kwargs")
    def kwargs_display(self, obj: RecurringTask) -> SafeString:
        return _json_block(obj.kwargs)


def _schedule_zone() -> tzinfo:
    """The zone the first dj_queue backend's scheduler reads cron times in."""
    aliases = dj_queue_backend_aliases()
    name = None
    if aliases:
        backend = task_backends[aliases[0]]
        try:
            name = backend.config.scheduler.time_zone  # type: ignore[attr-defined]
        except ConfigurationError:
            name = None
    return time_zone(name)


class SemaphoreAdmin(QueueModelAdmin):
    list_display = ("key", "value", "expires_at", "updated_at")
    search_fields = ("key",)
    ordering = ("key",)


class PauseAdmin(QueueModelAdmin):
    """Adding a pause pauses the queue and deleting it resumes the queue, both
    through the operations layer; a pause itself is never edited."""

    list_display = ("queue_name", "created_at")
    ordering = ("queue_name",)
    actions = ("resume_selected",)
    addable = True
    deletable = True

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["queue_name"] if obj is None else ["queue_name", "created_at"]

    def save_model(self, request: HttpRequest, obj: Pause, form: Any, change: bool) -> None:
        if change:
            raise PermissionDenied
        alias = queue_database_alias()
        if not pause_queue(alias, obj.queue_name):
            self.message_user(request, f"Queue {obj.queue_name} was already paused.")
        # The admin goes on with this object (its log entry, its page): give it the row.
        pauses = Pause.objects.using(alias).filter(
            *get_driver(alias).queue_name_filters(obj.queue_name)
        )
        saved = pauses.first()
        if saved is not None:
            obj.pk, obj.created_at = saved.pk, saved.created_at
            obj._state.adding, obj._state.db = False, alias

    def delete_model(self, request: HttpRequest, obj: Pause) -> None:
        resume_queue(queue_database_alias(), obj.queue_name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        alias = queue_database_alias()
        for name in queryset.values_list("queue_name", flat=True):
            resume_queue(alias, name)

    @admin.action(permissions=["change"], description="Resume the selected queues")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _resume(self, request, queryset.values_list("queue_name", flat=True))
