"""The processes' page: which runtime processes are registered, and their metadata."""

from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import SafeString

from ..models import Process
from .base import QueueModelAdmin, _json_block


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
