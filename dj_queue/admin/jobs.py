"""The job pages: each job's state, the state filter, and the job admin with
its actions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import Case, Exists, Model, OuterRef, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import localtime

from ..ids import parse_job_id
from ..models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    ReadyExecution,
    ScheduledExecution,
)
from ..operations.cancellation import cancel_jobs
from ..operations.jobs import discard_failed_jobs, discard_waiting_jobs, retry_failed_jobs
from ..operations.routing import queue_database_alias
from .actions import (
    _act_on_failed,
    _pause,
    _release_blocked,
    _resume,
    _selection_size,
    _skipped_note,
)
from .base import QueueModelAdmin, _json_block, _plural, _report
from .dashboard import dashboard_routes

# -- jobs ------------------------------------------------------------------------------

STATE_LABELS = {
    "ready": "Ready",
    "scheduled": "Scheduled",
    "running": "Running",
    "blocked": "Blocked",
    "failed": "Failed",
    "finished": "Finished",
}

STATE_TABLES: dict[str, type[Model]] = {
    "ready": ReadyExecution,
    "scheduled": ScheduledExecution,
    "running": ClaimedExecution,
    "blocked": BlockedExecution,
    "failed": FailedExecution,
}


def _has_row(state: str) -> Exists:
    return Exists(STATE_TABLES[state]._default_manager.filter(job_id=OuterRef("pk")))


def in_state(state: str) -> Q | Exists:
    """The condition on jobs for one state: a row in that state's table. A
    finished job has no row; ``finished_at`` tells it, and failed jobs, which have
    one too, are ruled out."""
    if state == "finished":
        return Q(finished_at__isnull=False) & Q(~_has_row("failed"))
    return _has_row(state)


def job_state() -> Case:
    """Each job's state, as one expression: evaluated per row shown, each test an
    index lookup on a state table, so a page of jobs costs no extra queries."""
    whens = [When(_has_row(state), then=Value(state)) for state in STATE_TABLES]
    finished = When(finished_at__isnull=False, then=Value("finished"))
    return Case(*whens, finished, default=Value(""))


class JobStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(STATE_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        state = self.value()
        if state not in STATE_LABELS:
            return None
        return queryset.filter(in_state(state))


def _moment(model: type[Model], job: Job, column: str) -> str:
    """A time column of the job's row in one state table, in local time, or "—"."""
    value = (
        model._default_manager.using(queue_database_alias())
        .filter(job_id=job.pk)
        .values_list(column, flat=True)
        .first()
    )
    return "—" if value is None else str(localtime(value))


class JobAdmin(QueueModelAdmin):
    list_display = (
        "id",
        "task_path",
        "queue_name",
        "priority",
        "state",
        "attempts",
        "enqueued_at",
        "started_at",
        "finished_at",
    )
    list_only = (
        "id",
        "task_path",
        "queue_name",
        "priority",
        "enqueued_at",
        "started_at",
        "finished_at",
        "worker_ids",
    )
    list_filter = (JobStateFilter,)
    # Shown so the search box appears; the search itself is get_search_results.
    search_fields = ("=id", "^task_path")
    search_help_text = "A job id, or the beginning of a task path."
    # Job ids are time-ordered (UUIDv7): newest first, straight off the primary key.
    ordering = ("-id",)
    sortable_by = ("id",)
    actions = (
        "cancel",
        "retry_failed",
        "discard_failed",
        "discard_waiting",
        "release_blocked",
        "pause_queues",
        "resume_queues",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "task_path",
                    "state",
                    "queue_name",
                    "priority",
                    "backend_alias",
                )
            },
        ),
        (
            "Concurrency limit and unique key",
            {
                "fields": (
                    "unique_key",
                    "unique_until",
                    "concurrency_key",
                    "concurrency_limit",
                    "concurrency_duration",
                    "concurrency_on_conflict",
                )
            },
        ),
        (
            "Retries, timeout and cancel",
            {
                "fields": (
                    "attempts",
                    "next_retry",
                    "retry_policy_display",
                    "timeout",
                    "cancel_request",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "run_after",
                    "enqueued_at",
                    "started_at",
                    "last_attempted_at",
                    "finished_at",
                )
            },
        ),
        ("Call", {"fields": ("args_display", "kwargs_display")}),
        (
            "Outcome",
            {"fields": ("return_value_display", "worker_ids_display", "failure", "errors_display")},
        ),
    )
    readonly_fields = (
        "state",
        "attempts",
        "next_retry",
        "retry_policy_display",
        "cancel_request",
        "args_display",
        "kwargs_display",
        "return_value_display",
        "worker_ids_display",
        "failure",
        "errors_display",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(job_state=job_state())

    def get_urls(self) -> list[URLPattern]:
        # The dashboard's come first: the admin's "<path:object_id>/" would take them.
        wrap = self.admin_site.admin_view
        routes = dashboard_routes(self)
        dashboard = [path(route, wrap(view), name=name) for route, view, name in routes]
        return dashboard + super().get_urls()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # A job id finds that job; any other term is a task path prefix. Both
        # are index lookups, where a substring search would read every row.
        term = search_term.strip()
        if not term:
            return queryset, False
        job_id = parse_job_id(term)
        if job_id is not None:
            return queryset.filter(pk=job_id), False
        return queryset.filter(task_path__startswith=term), False

    @admin.display(description="state")
    def state(self, obj: Job) -> str:
        return STATE_LABELS.get(getattr(obj, "job_state", ""), "—")

    @admin.display(description="attempts")
    def attempts(self, obj: Job) -> int:
        return len(obj.worker_ids or [])

    @admin.display(description="next retry")
    def next_retry(self, obj: Job) -> str:
        if not obj.worker_ids:
            return "—"
        return _moment(ScheduledExecution, obj, "scheduled_at")

    @admin.display(description="cancel requested")
    def cancel_request(self, obj: Job) -> str:
        return _moment(ClaimedExecution, obj, "cancel_requested_at")

    @admin.display(description="retry policy")
    def retry_policy_display(self, obj: Job) -> SafeString | str:
        if obj.retry_policy is None:
            return "one attempt, no automatic retry"
        return _json_block(obj.retry_policy)

    @admin.display(description="args")
    def args_display(self, obj: Job) -> SafeString:
        return _json_block(obj.args)

    @admin.display(description="kwargs")
    def kwargs_display(self, obj: Job) -> SafeString:
        return _json_block(obj.kwargs)

    @admin.display(description="return value")
    def return_value_display(self, obj: Job) -> SafeString:
        return _json_block(obj.return_value)

    @admin.display(description="worker ids")
    def worker_ids_display(self, obj: Job) -> SafeString:
        return _json_block(obj.worker_ids)

    @admin.display(description="failure")
    def failure(self, obj: Job) -> SafeString | str:
        failed = FailedExecution.objects.using(queue_database_alias()).filter(job_id=obj.pk).first()
        if failed is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>: {}',
            self.admin_url(FailedExecution, failed.pk),
            failed.exception_class,
            failed.message,
        )

    @admin.display(description="errors")
    def errors_display(self, obj: Job) -> SafeString | str:
        errors = [error for error in obj.errors or [] if isinstance(error, dict)]
        if not errors:
            return "—"
        return format_html_join(
            "",
            "<p>attempt {}: <strong>{}</strong></p><pre>{}</pre>",
            (
                (number, e.get("exception_class_path", ""), e.get("traceback", ""))
                for number, e in enumerate(errors, start=1)
            ),
        )

    # Actions take the selection through the condition of the state they act on,
    # so "select all" over a million jobs hands the operation only the few that
    # can be acted on.
    def _ids(self, queryset: QuerySet[Any], condition: Any) -> list[uuid.UUID]:
        return list(queryset.order_by().filter(condition).values_list("pk", flat=True))

    def _on_failed(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        operation: Callable[..., int],
        verb: str,
    ) -> None:
        ids = self._ids(queryset, _has_row("failed"))
        selected = _selection_size(queryset)
        _act_on_failed(self, request, ids, selected, "not failed", operation, verb)

    @admin.action(permissions=["change"], description="Retry selected failed jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._on_failed(request, queryset, retry_failed_jobs, "Retried")

    @admin.action(permissions=["change"], description="Discard selected failed jobs")
    def discard_failed(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._on_failed(request, queryset, discard_failed_jobs, "Discarded")

    @admin.action(
        permissions=["change"], description="Discard selected ready, scheduled or blocked jobs"
    )
    def discard_waiting(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = _selection_size(queryset)  # before the discarded rows are gone
        waiting = _has_row("ready") | _has_row("scheduled") | _has_row("blocked")
        ids = self._ids(queryset, waiting)
        done = discard_waiting_jobs(ids, using=queue_database_alias())
        note = _skipped_note(selected, done, "not waiting")
        _report(self, request, done, f"Discarded {_plural(done, 'waiting job')}.{note}")

    @admin.action(permissions=["change"], description="Cancel selected unfinished jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = _selection_size(queryset)
        unfinished = Q(finished_at__isnull=True)
        ids = self._ids(queryset, unfinished)
        done = cancel_jobs(queue_database_alias(), ids)
        note = _skipped_note(selected, done, "finished")
        _report(
            self,
            request,
            done,
            f"Cancelled {_plural(done, 'job')} (a running job stops once its worker "
            f"notices).{note}",
        )

    @admin.action(
        permissions=["change"],
        description="Release selected blocked jobs now, outside their concurrency limit",
    )
    def release_blocked(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _release_blocked(self, request, self._ids(queryset, _has_row("blocked")), queryset)

    def _queue_names(self, queryset: QuerySet[Any]) -> list[str]:
        return list(queryset.order_by().values_list("queue_name", flat=True).distinct())

    @admin.action(permissions=["change"], description="Pause the queues of the selected jobs")
    def pause_queues(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _pause(self, request, self._queue_names(queryset))

    @admin.action(permissions=["change"], description="Resume the queues of the selected jobs")
    def resume_queues(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _resume(self, request, self._queue_names(queryset))
