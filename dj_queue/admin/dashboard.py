"""The operator's dashboard: is the queue healthy?

Three views, reached through the job admin's URLs (``JobAdmin.get_urls``) and
so wrapped by ``admin_site.admin_view`` (staff only, CSRF-protected, never
cached):

- ``dj_queue_dashboard``: the page, one panel per figure of ``reads.snapshot``;
- ``dj_queue_dashboard_panels``: the same panels' HTML as JSON, which the page
  fetches every few seconds to refresh itself without a reload;
- ``dj_queue_dashboard_action``: the buttons' POSTs, each one operation.

The job admin's view permission opens the page and its change permission the
buttons, as they do the job pages. The views stay thin: reading is one
snapshot, writing one call into ``dashboard_actions``, words and chart
``dashboard_panels``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from ..operations.routing import dj_queue_backend_aliases
from ..reads import dj_queue_backend, snapshot
from .dashboard_actions import BadInput, run_action
from .dashboard_panels import PANELS, panel_context

TEMPLATES = "admin/dj_queue/dashboard"
# Seconds between background refreshes: the default, and the bounds of ?refresh=N.
REFRESH_DEFAULT = 5
REFRESH_MIN = 1
REFRESH_MAX = 300


class SeeOther(HttpResponseRedirect):
    """After a POST, the browser GETs the dashboard: a reload posts nothing twice."""

    status_code = 303


# -- the request's parameters ------------------------------------------------------------


def backend_alias(params: QueryDict, *, required: bool) -> str:
    """The dj_queue backend asked for, the first one (``default``) if none was
    and none is required; BadInput names the ones there are."""
    aliases = dj_queue_backend_aliases()
    alias = params.get("backend", "")
    if not alias:
        if required:
            raise BadInput("The field 'backend' is missing.")
        if not aliases:
            raise BadInput("No dj_queue task backend is configured (settings.TASKS).")
        return aliases[0]
    if alias not in aliases:
        known = ", ".join(aliases) or "none"
        raise BadInput(f"Unknown backend {alias!r}: the dj_queue backends are {known}.")
    return alias


def refresh_param(params: QueryDict) -> int | None:
    """``?refresh=N`` held to its bounds, or None when absent or not a number."""
    try:
        seconds = int(params.get("refresh", ""))
    except ValueError:
        return None
    return min(REFRESH_MAX, max(REFRESH_MIN, seconds))


def dashboard_query(alias: str, refresh: int | None) -> str:
    """The query string that keeps the backend and refresh across requests."""
    params: dict[str, Any] = {"backend": alias}
    if refresh is not None:
        params["refresh"] = refresh
    return urlencode(params)


# -- the views -------------------------------------------------------------------------------


class Dashboard:
    """The dashboard's views, bound to the job admin whose permissions gate them."""

    def __init__(self, model_admin: admin.ModelAdmin) -> None:
        self.model_admin = model_admin
        self.site_name = model_admin.admin_site.name

    def url(self, name: str) -> str:
        return reverse(f"{self.site_name}:{name}")

    def _check_view(self, request: HttpRequest) -> None:
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied

    def _context(self, request: HttpRequest, alias: str, refresh: int | None) -> dict[str, Any]:
        """What every panel template reads: the figures, who may act, where to post."""
        return {
            **panel_context(snapshot(alias), self.site_name),
            "backend": alias,
            "refresh_param": refresh,
            "can_change": self.model_admin.has_change_permission(request),
            "action_url": self.url("dj_queue_dashboard_action"),
        }

    def page(self, request: HttpRequest) -> HttpResponse:
        self._check_view(request)
        # The templates' {% url "admin:..." %} then resolve to this admin site.
        request.current_app = self.site_name
        try:
            alias = backend_alias(request.GET, required=False)
        except BadInput as exc:
            return _bad_request(exc)
        refresh = refresh_param(request.GET)
        query = dashboard_query(alias, refresh)
        context = {
            **self.model_admin.admin_site.each_context(request),
            **self._context(request, alias, refresh),
            "title": "Queue dashboard",
            "opts": self.model_admin.model._meta,
            "panels": [(name, f"{TEMPLATES}/{name}.html") for name in PANELS],
            "refresh_seconds": REFRESH_DEFAULT if refresh is None else refresh,
            "refresh_url": f"{self.url('dj_queue_dashboard_panels')}?{query}",
            "backends": self._backend_links(alias, refresh),
        }
        return render(request, f"{TEMPLATES}/page.html", context)

    def _backend_links(self, current: str, refresh: int | None) -> list[dict[str, Any]]:
        """The switcher's links, or none when there is only one backend to show."""
        aliases = dj_queue_backend_aliases()
        if len(aliases) < 2:
            return []
        page = self.url("dj_queue_dashboard")
        return [
            {
                "alias": alias,
                "url": f"{page}?{dashboard_query(alias, refresh)}",
                "current": alias == current,
                "database": dj_queue_backend(alias).database_alias,
            }
            for alias in aliases
        ]

    def panels(self, request: HttpRequest) -> HttpResponse:
        self._check_view(request)
        try:
            alias = backend_alias(request.GET, required=False)
        except BadInput as exc:
            return _bad_request(exc)
        context = self._context(request, alias, refresh_param(request.GET))
        html = {
            name: render_to_string(f"{TEMPLATES}/{name}.html", context, request=request)
            for name in PANELS
        }
        return JsonResponse({"panels": html, "taken_at": context["taken_at"].isoformat()})

    def action(self, request: HttpRequest) -> HttpResponse:
        if not self.model_admin.has_change_permission(request):
            raise PermissionDenied
        try:
            alias = backend_alias(request.POST, required=True)
            refresh = refresh_param(request.POST)
            database = dj_queue_backend(alias).database_alias
            run_action(request, database, request.POST)
        except BadInput as exc:
            return _bad_request(exc)
        return SeeOther(f"{self.url('dj_queue_dashboard')}?{dashboard_query(alias, refresh)}")

    def routes(self) -> list[tuple[str, Callable[..., HttpResponse], str]]:
        """``(route, view, name)`` for the job admin to wrap and put first."""
        return [
            ("dashboard/", require_safe(self.page), "dj_queue_dashboard"),
            ("dashboard/panels/", require_safe(self.panels), "dj_queue_dashboard_panels"),
            ("dashboard/action/", require_POST(self.action), "dj_queue_dashboard_action"),
        ]


def _bad_request(exc: BadInput) -> HttpResponseBadRequest:
    """Plain text, so the reason reads the same in a browser, curl or a test."""
    return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


def dashboard_routes(
    model_admin: admin.ModelAdmin,
) -> list[tuple[str, Callable[..., HttpResponse], str]]:
    """The dashboard's routes for ``JobAdmin.get_urls``, bound to that admin."""
    return Dashboard(model_admin).routes()
