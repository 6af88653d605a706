"""``manage.py dj_queue_health``: is a runtime alive for this backend?

Exit status 0 when a supervisor and at least one worker of the backend have
heartbeated within ``--max-age`` seconds (by the database clock); 1 otherwise,
with a one-line reason. ``--json`` prints the same as one JSON object, for
probes. Only the small process table is read.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser
from django.db import DatabaseError
from django.db.models import Count, Max, Q
from django.utils import timezone

from dj_queue.db.clock import DatabaseNow
from dj_queue.models import Process

from ._base import BackendCommand, positive_number

REQUIRED = ("supervisor", "worker")


class Command(BackendCommand):
    help = "Exit 0 if a dj_queue runtime is heartbeating for the backend, 1 with a reason if not."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--max-age",
            type=positive_number("--max-age"),
            metavar="SECONDS",
            help="Heartbeats older than this do not count (default: process_alive_threshold).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        backend_alias = options["backend"]
        backend = self.backend(backend_alias)
        max_age = options["max_age"] or backend.config.process_alive_threshold
        report: dict[str, Any] = {"backend": backend_alias, "max_age": max_age}
        try:
            report.update(self._inspect(backend.database_alias, backend_alias, max_age))
        except DatabaseError as exc:
            report.update(healthy=False, reason=f"database unreachable: {exc}".strip())
        self._print(report, options["json"])
        if not report["healthy"]:
            sys.exit(1)

    def _inspect(self, alias: str, backend_alias: str, max_age: float) -> dict[str, Any]:
        fresh = Q(last_heartbeat_at__gte=DatabaseNow() - timedelta(seconds=max_age))
        rows = (
            Process.objects.using(alias)
            .filter(backend_alias=backend_alias)
            .values("kind")
            .annotate(live=Count("pk", filter=fresh), newest=Max("last_heartbeat_at"))
        )
        live = {row["kind"]: row["live"] for row in rows}
        newest = {row["kind"]: row["newest"] for row in rows}
        for kind in REQUIRED:
            if not live.get(kind):
                if kind in newest:
                    age = (timezone.now() - newest[kind]).total_seconds()
                    detail = f"the newest {kind} heartbeat is {age:.0f}s old"
                else:
                    detail = f"no {kind} is registered"
                reason = f"no {kind} has heartbeated within {max_age:g}s ({detail})"
                return {"healthy": False, "reason": reason, "live": live}
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(live.items()) if count)
        return {"healthy": True, "reason": f"live within {max_age:g}s: {summary}", "live": live}

    def _print(self, report: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            status = "ok" if report["healthy"] else "unhealthy"
            self.stdout.write(f"{status}: backend {report['backend']!r}: {report['reason']}")
