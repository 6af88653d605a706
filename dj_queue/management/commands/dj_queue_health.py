"""``manage.py dj_queue_health``: is the deployment of this backend alive?

A process is *live* when it heartbeated within ``--max-age`` seconds (default:
``process_alive_threshold``), by the database clock. The check selects the live
supervisors of the backend (on ``--host`` only, or the one with
``--supervisor-pid``) and is healthy when there is at least one and each has
every child its registration says it runs alive: as many workers as it
planned, its dispatchers, its scheduler. So a full node, an ``--only-dispatch``
node and a supervisor embedded in a web server each read healthy while they
run, and unhealthy once a child or the whole node stops or is killed (after
``--max-age``). A supervisor whose children are still registering reads
unhealthy for that moment. ``--require worker,dispatcher,scheduler`` also asks
for at least one live process of each kind among the selection.

Exit status: 0 healthy; 1 unhealthy or the database unreachable, with a
one-line reason (``--json``: one object); 2 for a bad flag. Only the process
table is read, in one query.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError
from django.db.models import BooleanField, ExpressionWrapper, Q

from dj_queue.db.clock import DatabaseNow
from dj_queue.models import Process

from ._base import BackendCommand, positive_number

CHILD_KINDS = ("worker", "dispatcher", "scheduler")


def _kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in value.split(",") if kind.strip())
    unknown = sorted(set(kinds) - set(CHILD_KINDS))
    if not kinds or unknown:
        raise CommandError(
            f"--require {value!r}: expected a comma-separated list of {', '.join(CHILD_KINDS)}.",
            returncode=2,
        )
    return kinds


def expected_children(metadata: dict[str, Any]) -> Counter[str]:
    """The children a supervisor's registration says it runs."""
    expected: Counter[str] = Counter()
    for kind, key in (("worker", "workers"), ("dispatcher", "dispatchers")):
        count = metadata.get(key, 0)
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            expected[kind] = count
    if metadata.get("scheduler") is True:
        expected["scheduler"] = 1
    return expected


class Command(BackendCommand):
    help = "Exit 0 if the backend's live supervisors and all their children heartbeat, else 1."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--max-age",
            type=positive_number("--max-age"),
            metavar="SECONDS",
            help="Heartbeats older than this do not count (default: process_alive_threshold).",
        )
        parser.add_argument("--host", help="Check only the processes on this host.")
        parser.add_argument(
            "--supervisor-pid",
            type=int,
            metavar="PID",
            help="Check only the supervisor with this pid (with --host on a shared database).",
        )
        parser.add_argument(
            "--require",
            metavar="KINDS",
            help="Also require a live process of each kind: worker,dispatcher,scheduler.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        backend_alias = options["backend"]
        required = _kinds(options["require"]) if options["require"] else ()
        backend = self.backend(backend_alias)
        max_age = options["max_age"] or backend.config.process_alive_threshold
        report: dict[str, Any] = {"backend": backend_alias, "max_age": max_age}
        try:
            report.update(
                self._inspect(
                    backend.database_alias,
                    backend_alias,
                    max_age,
                    host=options["host"],
                    supervisor_pid=options["supervisor_pid"],
                    required=required,
                )
            )
        except DatabaseError as exc:
            report.update(healthy=False, reason=f"database unreachable: {exc}".strip(), live={})
        self._print(report, options["json"])
        if not report["healthy"]:
            sys.exit(1)

    def _inspect(
        self,
        alias: str,
        backend_alias: str,
        max_age: float,
        *,
        host: str | None,
        supervisor_pid: int | None,
        required: tuple[str, ...],
    ) -> dict[str, Any]:
        fresh = Q(last_heartbeat_at__gte=DatabaseNow() - timedelta(seconds=max_age))
        processes = Process.objects.using(alias).filter(backend_alias=backend_alias)
        if host is not None:
            processes = processes.filter(hostname=host)
        rows = list(
            processes.annotate(live=ExpressionWrapper(fresh, output_field=BooleanField())).values(
                "pk", "kind", "pid", "hostname", "metadata", "supervisor_id", "live"
            )
        )
        supervisors = [row for row in rows if row["kind"] == "supervisor" and row["live"]]
        if supervisor_pid is not None:
            supervisors = [row for row in supervisors if row["pid"] == supervisor_pid]
        selected_ids = {row["pk"] for row in supervisors}
        children = [row for row in rows if row["live"] and row["supervisor_id"] in selected_ids]
        live = Counter(row["kind"] for row in supervisors + children)
        report: dict[str, Any] = {"live": dict(live), "supervisors": []}
        where = self._where(host, supervisor_pid)
        if not supervisors:
            return {
                **report,
                "healthy": False,
                "reason": f"no supervisor{where} has heartbeated within {max_age:g}s",
            }
        problems = []
        for supervisor in supervisors:
            expected = expected_children(supervisor["metadata"] or {})
            running = Counter(
                row["kind"] for row in children if row["supervisor_id"] == supervisor["pk"]
            )
            missing = {kind: count - running[kind] for kind, count in expected.items()}
            missing = {kind: count for kind, count in missing.items() if count > 0}
            report["supervisors"].append(
                {
                    "pid": supervisor["pid"],
                    "host": supervisor["hostname"],
                    "embedded": bool((supervisor["metadata"] or {}).get("embedded")),
                    "expected": dict(expected),
                    "live": dict(running),
                }
            )
            if missing:
                gaps = ", ".join(f"{count} {kind}(s)" for kind, count in sorted(missing.items()))
                problems.append(
                    f"supervisor pid {supervisor['pid']} on {supervisor['hostname']} "
                    f"lacks {gaps} live within {max_age:g}s"
                )
        for kind in required:
            if not live[kind]:
                problems.append(f"no {kind}{where} has heartbeated within {max_age:g}s")
        if problems:
            return {**report, "healthy": False, "reason": "; ".join(problems)}
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(live.items()))
        return {**report, "healthy": True, "reason": f"live within {max_age:g}s: {summary}"}

    @staticmethod
    def _where(host: str | None, supervisor_pid: int | None) -> str:
        parts = []
        if supervisor_pid is not None:
            parts.append(f"with pid {supervisor_pid}")
        if host is not None:
            parts.append(f"on host {host!r}")
        return (" " + " ".join(parts)) if parts else ""

    def _print(self, report: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            status = "ok" if report["healthy"] else "unhealthy"
            self.stdout.write(f"{status}: backend {report['backend']!r}: {report['reason']}")
