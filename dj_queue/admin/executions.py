"""The waiting and running state tables' pages, read only but for the release
of blocked jobs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .actions import _release_blocked
from .base import QueueModelAdmin


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
    search_fields = ("=concurrency_key",)
    search_help_text = "A concurrency key, exactly."
    # The hand-off order of one key, as its index has it.
    ordering = ("concurrency_key", "-priority", "id")
    actions = ("release_selected",)

    @admin.action(
        permissions=["change"],
        description="Release selected blocked jobs now, outside their concurrency limit",
    )
    def release_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        job_ids = list(queryset.order_by().values_list("job_id", flat=True))
        _release_blocked(self, request, job_ids, queryset)
