"""``metrics`` (Prometheus) and ``stats.json``: the figures of every dj_queue
backend the request may read, from one cached reading per backend.

A request may read backend B when it comes from an active staff member's
session, or carries ``Authorization: Bearer <token>`` with B's
``OPTIONS["metrics"]["token"]``: a scraper needs no user account, and a token
leaked from one backend's scraper reads no other backend.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .config import MetricsConfig
from .exceptions import ConfigurationError
from .metrics import PrometheusClientMissing, exposition
from .operations.routing import dj_queue_backend_aliases
from .reads.cache import cached_snapshot, metrics_config
from .reads.figures import Snapshot

FORBIDDEN = (
    "Forbidden: sign in as an active staff member, or send "
    "'Authorization: Bearer <token>' with the backend's OPTIONS['metrics']['token'].\n"
)


class Refused(Exception):
    """The request may not read what it asked for: ``response`` says why."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.content)
        self.response = response


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of the allowed backends' figures."""
    try:
        snapshots = _readable_snapshots(request)
        body, content_type = exposition(snapshots)
    except Refused as refused:
        return refused.response
    except PrometheusClientMissing as missing:
        return _plain(str(missing), status=501)
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_safe
def stats(request: HttpRequest) -> HttpResponse:
    """The same figures as ``metrics``, as JSON: one object per backend."""
    try:
        snapshots = _readable_snapshots(request)
    except Refused as refused:
        return refused.response
    return JsonResponse({"backends": {taken.backend: taken.as_json() for taken in snapshots}})


def _readable_snapshots(request: HttpRequest) -> list[Snapshot]:
    """The readings of the backends ``request`` may read (all of them, or the
    one ``?backend=`` names), or Refused with a 403 or 404."""
    aliases = dj_queue_backend_aliases()
    allowed = _allowed(request, aliases)
    if not allowed:
        raise Refused(_plain(FORBIDDEN, status=403))
    chosen = request.GET.get("backend")
    if chosen is None:
        return [cached_snapshot(alias) for alias in allowed]
    if chosen not in aliases:
        raise Refused(_not_found(chosen))
    if chosen not in allowed:
        raise Refused(_plain(FORBIDDEN, status=403))
    return [cached_snapshot(chosen)]


def _not_found(alias: str) -> HttpResponse:
    if alias in (getattr(settings, "TASKS", None) or {}):
        message = f"Task backend {alias!r} is not a dj_queue backend: it has no figures.\n"
    else:
        message = f"No task backend is called {alias!r} (settings.TASKS).\n"
    return _plain(message, status=404)


def _allowed(request: HttpRequest, aliases: list[str]) -> list[str]:
    """The aliases among ``aliases`` that ``request`` may read, in order."""
    if _is_staff(request):
        return list(aliases)
    token = _bearer_token(request)
    if token is None:
        return []
    return [alias for alias in aliases if _token_matches(alias, token)]


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)  # None without AuthenticationMiddleware
    return bool(user is not None and user.is_active and user.is_staff)


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _token_matches(alias: str, token: str) -> bool:
    expected = _config(alias).token
    # compare_digest takes time independent of where the strings differ.
    return expected is not None and hmac.compare_digest(expected.encode(), token.encode())


def _config(alias: str) -> MetricsConfig:
    try:
        return metrics_config(alias)
    except ConfigurationError:
        # A backend whose options do not parse admits no token (the system
        # check reports it); staff still see the error when it is read.
        return MetricsConfig()


def _plain(text: str, *, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
