"""The Django admin for dj_queue: see what the queue holds, act through operations.

Rules kept here:
- Nothing in this module writes a queue table. Every action and the one form
  that changes something (adding a pause) call ``dj_queue.operations``; state
  rows are shown read only, and Django's own save and delete never reach them.
- Every query goes to the queue database (``queue_database_alias()``).
- Pages stay quick on millions of jobs: counts are bounded, lists are ordered by
  an index, no filter runs ``SELECT DISTINCT`` over a big table, and search is
  an exact id or a prefix, never a substring scan.

Django's admin autodiscovery imports this module only when
``django.contrib.admin`` is installed; importing it elsewhere registers nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, Exists, Model, OuterRef, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from .db import get_driver
from .ids import parse_job_id
from .models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    Pause,
    Process,
    ReadyExecution,
    RecurringTask,
    ScheduledExecution,
    Semaphore,
)
from .operations.jobs import discard_failed_jobs, discard_waiting_jobs, retry_failed_jobs
from .operations.queues import pause_queue, resume_queue
from .operations.routing import queue_database_alias

# Rows counted at most for a changelist; beyond it the page says "10,000+".
COUNT_LIMIT = 10_000
# On a deep page, rows are counted up to this many pages past it, so the next
# pages can be listed.
PAGES_AHEAD = 10


# -- bounded counting --------------------------------------------------------------


class BoundedPaginator(Paginator):
    """A paginator that counts at most ``limit + 1`` rows.

    ``COUNT(*)`` over a million jobs reads the whole table on PostgreSQL; counting
    a ``LIMIT``ed subquery stops early. When the count is capped, the pages past
    the cap are not listed, and the templates show ``limit+``.
    """

    def __init__(self, object_list: Any, per_page: int, *, limit: int, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.limit = limit

    @cached_property
    def count(self) -> int:
        rows: QuerySet[Any] = self.object_list  # type: ignore[assignment]
        return rows.order_by().values("pk")[: self.limit + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.limit

    @property
    def count_label(self) -> str:
        return f"{self.limit:,}+" if self.capped else str(self.count)


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get(PAGE_VAR, 1)))
    except ValueError:
        return 1


class _ListChangeList(ChangeList):
    """Fetches only the columns a list shows: jobs carry arguments, results and
    tracebacks that a changelist never needs."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        queryset = super().get_queryset(request, exclude_parameters)
        columns = getattr(self.model_admin, "list_only", ())
        return queryset.only(*columns) if columns else queryset


class QueueModelAdmin(admin.ModelAdmin):
    """What every dj_queue page shares: the queue database, bounded counts, and
    rows that are read only unless a subclass routes a write through operations."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    # Columns fetched for the changelist (``QuerySet.only``); empty means all.
    list_only: tuple[str, ...] = ()
    # Whether the model's add and delete permissions apply; when False nobody has them.
    addable = False
    deletable = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(queue_database_alias())

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _ListChangeList

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> BoundedPaginator:
        # A deep page needs a count that reaches past it; counting stays in
        # proportion to the page's depth, as its OFFSET already is.
        limit = max(COUNT_LIMIT, (_page_number(request) + PAGES_AHEAD) * per_page)
        return BoundedPaginator(
            queryset,
            per_page,
            limit=limit,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.addable and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The model-level permission gates the actions; no row is ever edited in
        # a form, so every change page is a read-only view.
        return obj is None and super().has_change_permission(request)

    # Django's own writes, refused outright should anything reach them.
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        raise PermissionDenied

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        raise PermissionDenied

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        raise PermissionDenied

    def admin_url(self, model: type[Model], pk: object) -> str:
        opts = model._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[pk]
        )

    def job_link(self, job_id: uuid.UUID) -> SafeString:
        return format_html('<a href="{}">{}</a>', self.admin_url(Job, job_id), job_id)

    @admin.display(description="job")
    def job_link_column(self, obj: Any) -> SafeString:
        return self.job_link(obj.job_id)


# -- helpers -------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _selection_size(queryset: QuerySet[Any]) -> int | None:
    """How many rows an action was given, or None past the count limit
    ("select all" over a huge list, which is not counted)."""
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


def _json_block(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, message: str) -> None:
    level = messages.SUCCESS if done else messages.WARNING
    modeladmin.message_user(request, message, level)


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


class JobAdmin(QueueModelAdmin):
    list_display = (
        "id",
        "task_path",
        "queue_name",
        "priority",
        "state",
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
    )
    list_filter = (JobStateFilter,)
    # Shown so the search box appears; the search itself is get_search_results.
    search_fields = ("=id", "^task_path")
    search_help_text = "A job id, or the beginning of a task path."
    # Job ids are time-ordered (UUIDv7): newest first, straight off the primary key.
    ordering = ("-id",)
    sortable_by = ("id",)
    actions = (
        "retry_failed",
        "discard_failed",
        "discard_waiting",
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
                    "concurrency_key",
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
        "args_display",
        "kwargs_display",
        "return_value_display",
        "worker_ids_display",
        "failure",
        "errors_display",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(job_state=job_state())

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
            "<p><strong>{}</strong></p><pre>{}</pre>",
            ((e.get("exception_class_path", ""), e.get("traceback", "")) for e in errors),
        )

    # Actions take the selection through the condition of the state they act on,
    # so "select all" over a million jobs hands the operation only the few that
    # can be acted on.
    def _ids(self, queryset: QuerySet[Any], condition: Q | Exists) -> list[uuid.UUID]:
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

    @admin.action(permissions=["change"], description="Discard selected ready or scheduled jobs")
    def discard_waiting(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = _selection_size(queryset)  # before the discarded rows are gone
        ids = self._ids(queryset, _has_row("ready") | _has_row("scheduled"))
        done = discard_waiting_jobs(ids, using=queue_database_alias())
        note = _skipped_note(selected, done, "not ready or scheduled")
        _report(self, request, done, f"Discarded {_plural(done, 'waiting job')}.{note}")

    def _queue_names(self, queryset: QuerySet[Any]) -> list[str]:
        return list(queryset.order_by().values_list("queue_name", flat=True).distinct())

    @admin.action(permissions=["change"], description="Pause the queues of the selected jobs")
    def pause_queues(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _pause(self, request, self._queue_names(queryset))

    @admin.action(permissions=["change"], description="Resume the queues of the selected jobs")
    def resume_queues(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _resume(self, request, self._queue_names(queryset))


# -- failed executions -------------------------------------------------------------------


class FailedExecutionAdmin(QueueModelAdmin):
    list_display = (
        "job_link_column",
        "task_path",
        "queue_name",
        "exception_class",
        "short_message",
        "created_at",
    )
    list_display_links = ("exception_class",)
    list_select_related = ("job",)
    list_only = (
        "id",
        "job_id",
        "exception_class",
        "message",
        "created_at",
        "job__id",
        "job__task_path",
        "job__queue_name",
    )
    search_fields = ("=job_id", "^exception_class", "^job__task_path")
    search_help_text = "A job id, or the beginning of an exception class or a task path."
    ordering = ("-id",)
    sortable_by = ("created_at",)
    actions = ("retry_failed", "discard_failed")
    fields = (
        "job",
        "task_path",
        "queue_name",
        "exception_class",
        "message",
        "traceback_display",
        "created_at",
    )
    readonly_fields = ("task_path", "queue_name", "traceback_display")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        job_id = parse_job_id(term)
        if job_id is not None:
            return queryset.filter(job_id=job_id), False
        matches = Q(exception_class__startswith=term) | Q(job__task_path__startswith=term)
        return queryset.filter(matches), False

    @admin.display(description="task path")
    def task_path(self, obj: FailedExecution) -> str:
        return obj.job.task_path

    @admin.display(description="queue")
    def queue_name(self, obj: FailedExecution) -> str:
        return obj.job.queue_name

    @admin.display(description="message")
    def short_message(self, obj: FailedExecution) -> str:
        return Truncator(obj.message).chars(80)

    @admin.display(description="traceback")
    def traceback_display(self, obj: FailedExecution) -> SafeString:
        return format_html("<pre>{}</pre>", obj.traceback)

    def _job_ids(self, queryset: QuerySet[Any]) -> list[uuid.UUID]:
        return list(queryset.order_by().values_list("job_id", flat=True))

    @admin.action(permissions=["change"], description="Retry selected failed jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = self._job_ids(queryset)
        _act_on_failed(
            self, request, ids, len(ids), "no longer failed", retry_failed_jobs, "Retried"
        )

    @admin.action(permissions=["change"], description="Discard selected failed jobs")
    def discard_failed(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = self._job_ids(queryset)
        _act_on_failed(
            self, request, ids, len(ids), "no longer failed", discard_failed_jobs, "Discarded"
        )


# -- the other state tables, read only ---------------------------------------------------


class ExecutionAdmin(QueueModelAdmin):
    """A state table: which jobs are in this state, linked to the job pages."""

    sortable_by = ()


class ReadyExecutionAdmin(ExecutionAdmin):
    list_display = ("id", "job_link_column", "queue_name", "priority", "created_at")
    # Claim order, as the claim index has it.
    ordering = ("-priority", "id")


class ScheduledExecutionAdmin(ExecutionAdmin):
    list_display = ("id", "job_link_column", "queue_name", "priority", "scheduled_at")
    # Due order, as the dispatcher's index has it.
    ordering = ("scheduled_at", "-priority", "id")


class ClaimedExecutionAdmin(ExecutionAdmin):
    list_display = ("id", "job_link_column", "process", "created_at")
    list_select_related = ("process",)
    ordering = ("-id",)


class BlockedExecutionAdmin(ExecutionAdmin):
    list_display = (
        "id",
        "job_link_column",
        "queue_name",
        "priority",
        "concurrency_key",
        "expires_at",
    )
    ordering = ("-id",)


# -- processes, recurring tasks, semaphores ------------------------------------------------


class ProcessAdmin(QueueModelAdmin):
    list_display = ("kind", "name", "pid", "hostname", "supervisor", "last_heartbeat_at")
    list_filter = ("kind",)  # a choices field: no SELECT DISTINCT
    list_select_related = ("supervisor",)
    search_fields = ("name", "hostname")
    ordering = ("kind", "name")
    readonly_fields = ("metadata_display",)
    fields = (
        "kind",
        "name",
        "backend_alias",
        "pid",
        "hostname",
        "supervisor",
        "metadata_display",
        "last_heartbeat_at",
        "created_at",
    )

    @admin.display(description="metadata")
    def metadata_display(self, obj: Process) -> SafeString:
        return _json_block(obj.metadata)


class RecurringTaskAdmin(QueueModelAdmin):
    list_display = ("key", "task_path", "schedule", "queue_name", "priority", "static")
    list_filter = ("static",)
    search_fields = ("key", "task_path")
    ordering = ("key",)


class SemaphoreAdmin(QueueModelAdmin):
    list_display = ("key", "value", "expires_at", "updated_at")
    search_fields = ("key",)
    ordering = ("key",)


# -- pauses --------------------------------------------------------------------------------


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


MODEL_ADMINS: dict[type[Model], type[admin.ModelAdmin]] = {
    Job: JobAdmin,
    FailedExecution: FailedExecutionAdmin,
    ReadyExecution: ReadyExecutionAdmin,
    ScheduledExecution: ScheduledExecutionAdmin,
    ClaimedExecution: ClaimedExecutionAdmin,
    BlockedExecution: BlockedExecutionAdmin,
    Process: ProcessAdmin,
    RecurringTask: RecurringTaskAdmin,
    Semaphore: SemaphoreAdmin,
    Pause: PauseAdmin,
}


def register(site: admin.AdminSite) -> None:
    """Register dj_queue's pages on ``site`` (done for Django's default site)."""
    for model, model_admin in MODEL_ADMINS.items():
        if not site.is_registered(model):
            site.register(model, model_admin)


if apps.is_installed("django.contrib.admin"):
    register(admin.site)
