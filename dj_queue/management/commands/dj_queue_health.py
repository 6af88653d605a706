"""``manage.py dj_queue_health``: is the deployment of this backend alive?

Rules:

- A process is *live* when it heartbeated within ``--max-age`` seconds
  (default: the backend's ``process_alive_threshold``), by the database clock.
- The check selects the backend's live supervisors: all of them, those on
  ``--host HOSTNAME`` only, or the one with ``--supervisor-pid PID`` (add
  ``--host`` on a shared database, where pids repeat across hosts and
  containers). Supervisors that stopped heartbeating are dead, are ignored,
  and will be pruned.
- It is healthy when at least one supervisor is selected and each selected
  supervisor has alive every child its registration (``metadata``) says it
  runs: ``workers: N`` live worker rows pointing at it, ``dispatchers: N``
  dispatchers, ``scheduler: true`` a scheduler. Missing or unknown metadata
  keys count as "runs none". So a full node, an ``--only-dispatch`` node and a
  supervisor embedded in a web server (``embedded: true``) each read healthy
  while they run, and unhealthy once a child or the whole node has stopped or
  been killed for longer than ``--max-age``. A supervisor whose children are
  still registering (just started, or replacing a child that died) reads
  unhealthy for that moment; probe with a retry or an initial delay.
- ``--require worker,dispatcher,scheduler`` also asks for at least one live
  process of each kind named among the selected supervisors' children
  (``--require worker`` is the old "a supervisor and a worker" rule).

Exit status: 0 healthy; 1 unhealthy or the database unreachable, with a
one-line reason on stdout (``--json``: one object); 2 when called wrongly (a
bad flag value or an unknown ``--backend``), with the message on stderr. Only
the process table is read, in one query.
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

from dj_queue.backend import DjQueueBackend
from dj_queue.db.clock import DatabaseNow
from dj_queue.exceptions import ConfigurationError
from dj_queue.models import Process

from ._base import BackendCommand, positive_number

CHILD_KINDS = ("worker", "dispatcher", "scheduler")


def _kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(kind.strip() for kind in value.split(",") if kind.strip()))
    unknown = sorted(set(kinds) - set(CHILD_KINDS))
    if not kinds or unknown:
        raise CommandError(
            f"--require {value!r}: expected a comma-separated list of {', '.join(CHILD_KINDS)}.",
            returncode=2,
        )
    return kinds


def expected_children(metadata: Any) -> Counter[str]:
    """The children a supervisor's registration says it runs (none for what it omits)."""
    expected: Counter[str] = Counter()
    if not isinstance(metadata, dict):
        return expected
    for kind, key in (("worker", "workers"), ("dispatcher", "dispatchers")):
        count = metadata.get(key, 0)
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            expected[kind] = count
    if metadata.get("scheduler") is True:
        expected["scheduler"] = 1
    return expected


class Command(BackendCommand):
    help = (
        "Exit 0 if the backend's live supervisors (on --host, or with --supervisor-pid) "
        "have every child they run alive, 1 with a reason if not, 2 for a bad flag."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--max-age",
            type=positive_number("--max-age"),
            metavar="SECONDS",
            help="Heartbeats older than this do not count (default: process_alive_threshold).",
        )
        parser.add_argument("--host", metavar="HOSTNAME", help="Check only this host's processes.")
        parser.add_argument(
            "--supervisor-pid",
            type=positive_number("--supervisor-pid", whole=True),
            metavar="PID",
            help="Check only the supervisor with this pid (with --host on a shared database).",
        )
        parser.add_argument(
            "--require",
            metavar="KINDS",
            help="Also require a live process of each kind: worker,dispatcher,scheduler.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def _backend(self, alias: str) -> DjQueueBackend:
        try:
            return self.backend(alias)
        except CommandError as exc:  # an unknown --backend: a usage error
            raise CommandError(str(exc), returncode=2) from exc
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc

    def handle(self, *args: Any, **options: Any) -> None:
        backend_alias = options["backend"]
        required = _kinds(options["require"]) if options["require"] is not None else ()
        backend = self._backend(backend_alias)
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
            report.update(
                healthy=False,
                reason=f"database unreachable: {exc}".strip(),
                live={},
                supervisors=[],
            )
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
        # One query: every row of the backend (on the host), whether it is live,
        # and the database's time, to say how old a stale heartbeat is.
        rows = list(
            processes.annotate(
                live=ExpressionWrapper(fresh, output_field=BooleanField()),
                now=DatabaseNow(),
            ).values(
                "pk",
                "kind",
                "pid",
                "hostname",
                "metadata",
                "supervisor_id",
                "last_heartbeat_at",
                "live",
                "now",
            )
        )
        candidates = [row for row in rows if row["kind"] == "supervisor"]
        if supervisor_pid is not None:
            candidates = [row for row in candidates if row["pid"] == supervisor_pid]
        supervisors = [row for row in candidates if row["live"]]
        selected_ids = {row["pk"] for row in supervisors}
        children = [row for row in rows if row["live"] and row["supervisor_id"] in selected_ids]
        live = Counter(row["kind"] for row in supervisors + children)
        report: dict[str, Any] = {"live": dict(live), "supervisors": []}
        where = self._where(host, supervisor_pid)
        if not supervisors:
            if candidates:
                newest = max(
                    0.0,
                    min(
                        (row["now"] - row["last_heartbeat_at"]).total_seconds()
                        for row in candidates
                    ),
                )
                detail = f"the newest supervisor heartbeat{where} is {newest:.0f}s old"
            else:
                detail = f"no supervisor{where} is registered"
            reason = f"no supervisor{where} has heartbeated within {max_age:g}s ({detail})"
            return {**report, "healthy": False, "reason": reason}
        problems = []
        for supervisor in supervisors:
            metadata = supervisor["metadata"] if isinstance(supervisor["metadata"], dict) else {}
            expected = expected_children(metadata)
            running = Counter(
                row["kind"] for row in children if row["supervisor_id"] == supervisor["pk"]
            )
            missing = {kind: count - running[kind] for kind, count in expected.items()}
            missing = {kind: count for kind, count in missing.items() if count > 0}
            report["supervisors"].append(
                {
                    "pid": supervisor["pid"],
                    "host": supervisor["hostname"],
                    "mode": metadata.get("mode"),
                    "embedded": metadata.get("embedded") is True,
                    "expected": dict(expected),
                    "live": dict(running),
                    "missing": missing,
                    "healthy": not missing,
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
