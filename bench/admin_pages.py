"""How fast the admin pages are on a big jobs table.

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/admin_pages.py [--jobs 1000000]

Makes a scratch database from the test settings, fills it with ``--jobs``
finished jobs in one ``INSERT … SELECT`` over ``generate_series`` (one in a
thousand of them failed), adds a few hundred ready, scheduled and running jobs
and some processes through the operations layer, runs VACUUM ANALYZE, then
requests each admin page through ``django.test.Client`` as a superuser and
prints the median of 5 requests in milliseconds (whole request, and the SQL in
it: the rest is Django rendering the page), with the number of queries.

PostgreSQL only: the bulk fill is PostgreSQL SQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from dj_queue.ids import new_job_id  # noqa: E402
from dj_queue.models import Job  # noqa: E402
from dj_queue.operations.claims import claim_jobs  # noqa: E402
from dj_queue.operations.jobs import JobError, NewJob, enqueue_jobs, fail_job  # noqa: E402
from dj_queue.operations.processes import register_process  # noqa: E402

ALIAS = "default"
RUNS = 5

TASK_PATHS = [
    "shop.tasks.send_receipt",
    "shop.tasks.charge_card",
    "mail.tasks.send_newsletter",
    "mail.tasks.send_welcome",
    "reports.tasks.build_daily",
    "reports.tasks.build_monthly",
    "search.tasks.reindex",
    "media.tasks.thumbnail",
]
RARE_TASK_PATH = "billing.tasks.close_year"  # one job in 100,000
QUEUES = ["default", "email", "reports"]

# Job ids are UUIDv7 like new_job_id() makes: 48 bits of milliseconds, version
# 7, variant 2, and the row number for the random bits. One job a second, ending
# an hour ago, so these are older than the jobs the operations add afterwards.
FILL_SQL = """
WITH numbered AS (
    SELECT i, %(last_ms)s - (%(count)s - i) * 1000 AS ms
    FROM generate_series(1, %(count)s) AS i
)
INSERT INTO dj_queue_job (
    id, backend_alias, task_path, queue_name, priority, args, kwargs,
    enqueued_at, started_at, last_attempted_at, finished_at,
    worker_ids, errors, return_value
)
SELECT
    (lpad(to_hex(ms), 12, '0') || '7000' || '8000' || lpad(to_hex(i), 12, '0'))::uuid,
    'default',
    CASE WHEN i %% 100000 = 0 THEN %(rare)s ELSE (%(paths)s::text[])[1 + i %% %(path_count)s] END,
    (%(queues)s::text[])[1 + i %% %(queue_count)s],
    0,
    jsonb_build_array(i, 'some argument'),
    jsonb_build_object('user_id', i %% 5000),
    to_timestamp(ms / 1000.0),
    to_timestamp(ms / 1000.0) + interval '20 milliseconds',
    to_timestamp(ms / 1000.0) + interval '20 milliseconds',
    to_timestamp(ms / 1000.0) + interval '120 milliseconds',
    '["worker-bench"]'::jsonb,
    CASE WHEN i %% 1000 = 0
        THEN jsonb_build_array(jsonb_build_object(
            'exception_class_path', 'builtins.ValueError',
            'traceback', 'Traceback (most recent call last):\n  ...\nValueError: bench'))
        ELSE '[]'::jsonb END,
    CASE WHEN i %% 1000 = 0 THEN NULL ELSE to_jsonb(i) END
FROM numbered
"""

FAILED_SQL = """
INSERT INTO dj_queue_failed_execution (job_id, exception_class, message, traceback, created_at)
SELECT id, 'builtins.ValueError', 'bench', 'Traceback (most recent call last):', finished_at
FROM dj_queue_job
WHERE errors <> '[]'::jsonb
"""


def fill(count: int) -> dict[str, uuid.UUID]:
    """The bulk of finished jobs in SQL, then live work through the operations;
    returns a few job ids to look at."""
    now = timezone.now()
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            FILL_SQL,
            {
                "count": count,
                "last_ms": int(now.timestamp() * 1000) - 3_600_000,
                "rare": RARE_TASK_PATH,
                "paths": TASK_PATHS,
                "path_count": len(TASK_PATHS),
                "queues": QUEUES,
                "queue_count": len(QUEUES),
            },
        )
        cursor.execute(FAILED_SQL)
    print(f"filled {count:,} jobs in {time.monotonic() - started:.1f}s", flush=True)

    supervisor = register_process(ALIAS, kind="supervisor", name="bench-sup", backend_alias=ALIAS)
    workers = [
        register_process(
            ALIAS,
            kind="worker",
            name=f"bench-worker-{n}",
            backend_alias=ALIAS,
            supervisor_id=supervisor.id,
        )
        for n in range(4)
    ]
    live = [new_job(queue, None) for queue in QUEUES for _ in range(200)]
    later = timezone.now() + timedelta(hours=1)
    live += [new_job("default", later) for _ in range(200)]
    enqueue_jobs(ALIAS, live, timezone.now())
    failed = []
    for worker in workers:
        claimed = claim_jobs(
            ALIAS, process_id=worker.id, worker_id=worker.name, selectors=["*"], limit=15
        )
        for job in claimed[:5]:  # recent failures, on top of the old ones
            assert fail_job(ALIAS, job.id, worker.id, error())
            failed.append(job.id)
    middle = Job.objects.using(ALIAS).order_by("pk").values_list("pk", flat=True)[count // 2]
    return {"middle": middle, "failed": failed[0]}


def new_job(queue: str, run_after: datetime | None) -> NewJob:
    return NewJob(
        id=new_job_id(),
        backend_alias=ALIAS,
        task_path=TASK_PATHS[0],
        queue_name=queue,
        priority=0,
        args=[1, 2],
        kwargs={},
        run_after=run_after,
    )


def error() -> JobError:
    try:
        raise ValueError("bench")
    except ValueError as exc:
        return JobError.from_exception(exc)


def analyze() -> None:
    # A settled table, as autovacuum leaves it: statistics and a visibility map.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def time_page(client: Client, url: str) -> tuple[float, float, int, int | None]:
    """Median milliseconds of RUNS requests, and of the SQL in them; queries per
    request; rows listed (None on a page that is not a list)."""
    timings, sql_timings = [], []
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
        sql_timings.append(sum(float(query["time"]) for query in queries) * 1000)
    # Each listed row starts with a header cell: its link.
    rows = None if "/change/" in url else response.content.decode().count('<th class="field-')
    return statistics.median(timings), statistics.median(sql_timings), len(queries), rows


def pages(ids: dict[str, uuid.UUID]) -> list[tuple[str, str]]:
    jobs = reverse("admin:dj_queue_job_changelist")
    states = ["ready", "scheduled", "running", "blocked", "failed", "finished"]
    return [
        ("jobs", jobs),
        *[(f"jobs, state {state}", f"{jobs}?state={state}") for state in states],
        ("jobs, search by id", f"{jobs}?q={ids['middle']}"),
        ("jobs, search 'mail.tasks.' (1/4 of jobs)", f"{jobs}?q=mail.tasks."),
        ("jobs, search 'billing.' (10 jobs)", f"{jobs}?q=billing."),
        ("jobs, search 'nothing.' (no job)", f"{jobs}?q=nothing."),
        ("jobs, page 50", f"{jobs}?p=50"),
        ("jobs, failed, page 5", f"{jobs}?state=failed&p=5"),
        ("job detail (failed)", reverse("admin:dj_queue_job_change", args=[ids["failed"]])),
        ("job detail (finished)", reverse("admin:dj_queue_job_change", args=[ids["middle"]])),
        ("failed executions", reverse("admin:dj_queue_failedexecution_changelist")),
        ("processes", reverse("admin:dj_queue_process_changelist")),
    ]


def report(rows: list[tuple[str, float, float, int, int | None]], count: int) -> None:
    width = max(len(name) for name, *_ in rows)
    print(f"\nadmin pages, {count:,} finished jobs, {connection.vendor}, median of {RUNS}:")
    print(f"{'page':<{width}}  {'ms':>7}  {'sql ms':>7}  {'queries':>7}  {'rows':>5}")
    for name, ms, sql_ms, queries, listed in rows:
        shown = "-" if listed is None else str(listed)
        print(f"{name:<{width}}  {ms:>7.1f}  {sql_ms:>7.1f}  {queries:>7}  {shown:>5}")


def with_scratch_database(run: Callable[[], None], keep: bool) -> None:
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run()
    finally:
        if keep:
            print(f"kept the database {name}")
        else:
            connection.creation.destroy_test_db(name, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit(
            "bench/admin_pages.py fills its tables with PostgreSQL's generate_series: "
            "run it with DJ_QUEUE_TEST_DB=postgresql."
        )
    settings.ALLOWED_HOSTS = ["testserver"]

    def run() -> None:
        ids = fill(args.jobs)
        analyze()
        client = Client()
        client.force_login(User.objects.create_superuser("bench", "bench@example.com", "pw"))
        rows = [(name, *time_page(client, url)) for name, url in pages(ids)]
        report(rows, args.jobs)

    with_scratch_database(run, args.keep)


if __name__ == "__main__":
    main()
