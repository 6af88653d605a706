"""One measurement of the dj-queue release from PyPI, run by its virtualenv's python:

    <peer venv>/bin/python -P bench/peer_child.py '{"op": "drain", "count": 2000}'

bench/peer.py runs it, with the environment bench/peer_settings.py reads. Ops: describe
(versions and settings), migrate, enqueue, bulk, drain, latency; ``count`` jobs. It sets
Django up with the peer settings, runs the same code as the other systems
(bench/measures.py) on the release's own models and backend, and prints the figures as
JSON on its last line, after RESULT_MARK. Runtimes are the release's
``python -P -m django dj_queue``, started with this python.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

RESULT_MARK = "PEER-RESULT "
PREFILL_BATCH = 500


def main() -> int:
    # SIGTERM (from bench/peer.py) unwinds like Ctrl-C: a started runtime is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    request = json.loads(sys.argv[1])
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.peer_settings"
    import django

    django.setup()
    result = perform(request["op"], int(request.get("count", 0)))
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def perform(op: str, count: int) -> dict[str, Any]:
    from django.core.management import call_command

    from bench import measures

    if op == "describe":
        return describe()
    if op == "migrate":
        call_command("migrate", verbosity=0, interactive=False)
        return {"migrated": True}
    system = peer_system()
    if op == "enqueue":
        return measures.enqueue_throughput(system, count)
    if op == "bulk":
        return measures.bulk_throughput(system, count)
    if op == "drain":
        return measures.drain(system, count, 1, dict(os.environ))
    if op == "latency":
        from bench.peer_tasks import LEDGER_ENV, stamped

        with tempfile.TemporaryDirectory(prefix="dj_queue_bench_peer_") as directory:
            ledger = Path(directory) / "ledger.txt"
            ledger.touch()
            os.environ[LEDGER_ENV] = str(ledger)
            system = peer_system(stamped)
            return measures.latency(system, count, dict(os.environ))
    raise ValueError(f"unknown op {op!r}")


def describe() -> dict[str, Any]:
    import platform

    from django.conf import settings
    from django.db import connection

    packages = ("dj-queue", "django", "psycopg", "mysqlclient")
    db = connection.settings_dict
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "versions": {name: importlib.metadata.version(name) for name in packages},
        "dj_queue_origin": getattr(settings, "DJ_QUEUE_ORIGIN", None),
        "settings": {
            "ENGINE": db["ENGINE"],
            "NAME": db["NAME"],
            "CONN_MAX_AGE": db["CONN_MAX_AGE"],
            "database_OPTIONS": db["OPTIONS"],
            "dj_queue_OPTIONS": settings.TASKS["default"]["OPTIONS"],
        },
    }


def _model(name: str) -> Any:
    """One of the release's models (typed Any: type checkers see this repository's)."""
    from importlib import import_module

    return getattr(import_module("dj_queue.models"), name)


def peer_system(task: Any = None) -> Any:
    from django.db.models import Max, Min
    from django.utils.dateparse import parse_datetime

    from bench.benchapp.tasks import noop
    from bench.systems import System

    class PeerDjQueue(System):
        """The release: same calls as this repository's dj_queue, its own models."""

        interpreter: ClassVar[tuple[str, ...]] = (sys.executable, "-P")
        # Finished jobs keep no start time: the first finish stands in for the first start.
        window_text: ClassVar[str] = "first finish -> last finish (no start time is kept)"

        def enqueue_batch(self, size: int) -> None:
            backend: Any = self.backend
            backend.enqueue_all([(self.task, (), {})] * size)

        def prefill(self, count: int) -> None:
            for start in range(0, count, PREFILL_BATCH):
                self.enqueue_batch(min(PREFILL_BATCH, count - start))

        def unfinished(self) -> int:
            Job = _model("Job")
            # A failed job keeps finished_at empty: it counts as done here, then as failed.
            return Job.objects.filter(
                finished_at__isnull=True, failed_execution__isnull=True
            ).count()

        def failed(self) -> int:
            return int(_model("FailedExecution").objects.count())

        def window(self) -> tuple[datetime, datetime]:
            span = _model("Job").objects.aggregate(
                first=Min("finished_at"), last=Max("finished_at")
            )
            return span["first"], span["last"]

        def runtime_commands(self, processes: int, *, drain: bool) -> list[list[str]]:
            return [["dj_queue", "--backend", self.task.backend]]

        def start_delays_ms(self, result_ids: list[str]) -> list[float]:
            from bench.peer_tasks import LEDGER_ENV

            started = {}
            for line in Path(os.environ[LEDGER_ENV]).read_text().splitlines():
                job_id, stamp = line.split()
                started[job_id] = parse_datetime(stamp)
            enqueued = {
                str(job_id): created
                for job_id, created in _model("Job")
                .objects.filter(id__in=result_ids)
                .values_list("id", "created_at")
            }
            missing = [i for i in result_ids if i not in started or i not in enqueued]
            if missing:
                raise RuntimeError(f"peer latency: no start noted for {len(missing)} job(s)")
            return [(started[i] - enqueued[i]).total_seconds() * 1000 for i in result_ids]

    return PeerDjQueue("dj_queue_pypi", "dj-queue", task or noop)


if __name__ == "__main__":
    sys.exit(main())
