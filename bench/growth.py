"""Does a big jobs table slow the hot path? Claim and enqueue costs on an empty
table and with 1,000,000 finished jobs, measured side by side (PostgreSQL).

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/growth.py [--finished 1000000]

For each state of the table it times, per operation (median over 2,000 runs):
one ``enqueue()``, one ``claim_jobs`` of a single job, and that job's
``complete_job``; then prints the ratio "with finished jobs / empty".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402

from dj_queue.operations.claims import claim_jobs  # noqa: E402
from dj_queue.operations.jobs import complete_job  # noqa: E402
from dj_queue.operations.processes import register_process  # noqa: E402
from tests.taskapp.tasks import noop  # noqa: E402

FILL_SQL = """
INSERT INTO dj_queue_job (
    id, backend_alias, task_path, queue_name, priority, args, kwargs,
    enqueued_at, started_at, last_attempted_at, finished_at, worker_ids, errors, return_value
)
SELECT
    gen_random_uuid(), 'default', 'tests.taskapp.tasks.noop', 'default', 0, '[]', '{}',
    now() - interval '1 day', now() - interval '1 day', now() - interval '1 day',
    now() - interval '1 day', '["bench"]', '[]', NULL
FROM generate_series(1, %s)
"""


def timed(runs: int, operation) -> float:
    """Median milliseconds of ``operation`` over ``runs`` calls."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(runs: int) -> dict[str, float]:
    process = register_process(
        "default", kind="worker", name=f"bench-{uuid.uuid4().hex[:8]}", backend_alias="default"
    )
    figures = {"enqueue": timed(runs, noop.enqueue)}
    claimed = []

    def claim() -> None:
        claimed.extend(
            claim_jobs("default", process_id=process.pk, worker_id="b", selectors=["*"], limit=1)
        )

    figures["claim"] = timed(runs, claim)
    finishing = iter(claimed)
    figures["complete"] = timed(
        len(claimed),
        lambda: complete_job("default", next(finishing).id, process.pk, None, preserve=True),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM dj_queue_job WHERE task_path = %s AND worker_ids <> %s",
            [noop.module_path, '["bench"]'],
        )
        cursor.execute("DELETE FROM dj_queue_process WHERE id = %s", [process.pk])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2000)
    arguments = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/growth.py fills the table with generate_series: PostgreSQL only.")
    created = {
        alias: connections[alias].creation.create_test_db(verbosity=0, autoclobber=True)
        for alias in connections
    }
    try:
        measure(200)  # warm up: connections, caches, plans
        empty = measure(arguments.runs)
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL, [arguments.finished])
            cursor.execute("ANALYZE")
        filled_in = time.monotonic() - started
        full = measure(arguments.runs)
        print(f"{arguments.finished:,} finished jobs written in {filled_in:.1f}s")
        print(f"{'operation':<10} {'empty ms':>9} {'full ms':>9} {'full/empty':>10}")
        for name in empty:
            ratio = full[name] / empty[name]
            print(f"{name:<10} {empty[name]:>9.3f} {full[name]:>9.3f} {ratio:>10.2f}")
    finally:
        connections.close_all()
        for alias, name in created.items():
            connections[alias].creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
