"""The failed executions' page: what failed and why, and the actions that
retry or discard failed jobs (through the operations layer)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from ..ids import parse_job_id
from ..models import FailedExecution
from ..operations.jobs import discard_failed_jobs, retry_failed_jobs
from .actions import _act_on_failed
from .base import QueueModelAdmin


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
