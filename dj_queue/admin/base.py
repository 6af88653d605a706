"""What every dj_queue admin page shares: the queue database, bounded counts,
read-only rows, and the small helpers the pages and actions format with."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import Job
from ..operations.routing import queue_database_alias

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
        # The limits are read from the package when a page is built, so that
        # ``dj_queue.admin.COUNT_LIMIT`` stays the one setting to change.
        from . import COUNT_LIMIT, PAGES_AHEAD

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


def _json_block(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, message: str) -> None:
    level = messages.SUCCESS if done else messages.WARNING
    modeladmin.message_user(request, message, level)
