"""Every example in ``examples/`` runs as a user runs it and proves its feature.

Each is started as ``python examples/exNN_….py`` with the suite's database
vendor in ``DJ_QUEUE_EXAMPLE_DB``; it must exit 0, print the line that shows
its feature worked, and leave no scratch database or directory behind. On
SQLite every example runs; on PostgreSQL and MariaDB those whose behaviour
depends on the database (locking, scheduling, separate databases, servers).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.databases import server_settings

EXAMPLES_DIR = ROOT / "examples"
DATABASE = os.environ.get("DJ_QUEUE_TEST_DB", "sqlite")

# The line each example prints once its feature demonstrably worked.
PROOF = {
    "ex01_basic_enqueue": r"^add\(3, 7\) -> 10 ",
    "ex02_basic_results": (
        r"^refreshed result: SUCCESSFUL, return_value=\{'released_by': 'main\(\)'\}"
    ),
    "ex03_basic_scheduled": (
        r"^scheduled job -> 'daily digest sent', started [\d.]+s after run_after$"
    ),
    "ex04_basic_priorities": (
        r"^execution order: urgent > high > normal-1 > normal-2 > low-1 > low-2$"
    ),
    "ex05_basic_queues": (
        r"^email\+default -> pid (\d+), reports-\* -> pid (?!\1)\d+, archive -> READY"
    ),
    "ex06_basic_bulk_enqueue": r"^200 of 200 bulk-enqueued jobs SUCCESSFUL$",
    "ex07_basic_enqueue_on_commit": r"^committed enqueue_on_commit -> 'receipt for order 2 sent'",
    "ex08_basic_recurring": r"^[3-9] slots fired \(of [3-9] RecurringExecution rows\), each job",
    "ex09_intermediate_failures": (
        r"^charge_card\(42\) retried -> 'order 42 charged on attempt 2' \(2 attempts"
    ),
    "ex10_intermediate_data_contract": (
        r"^echo\(\(1, 2\), point=\(3\.5, 'x'\)\) -> \{'args': \[\[1, 2\]\]"
    ),
    "ex11_intermediate_context": (
        r"attempt 1 on worker-\w+ FAILED, attempt 2 on worker-\w+ SUCCESSFUL$"
    ),
    "ex12_intermediate_async_task": (
        r"^async fetch_pages\(3 pages\) -> \['<home>', '<about>', '<blog>'\]"
    ),
    "ex13_intermediate_signals": (
        r"^despite the raising receiver: resize_image x2 -> \['cat\.png@200px'"
    ),
    "ex14_intermediate_dynamic_recurring": r"^unscheduled: (\d+) digest jobs then, \1 after 1\.5 s",
    "ex15_intermediate_yaml_config": (
        r"^build_report on queue 'reports-daily' -> .* \['reports\*'\] \(threads=1\)$"
    ),
    "ex16_intermediate_fork_vs_async": (
        r"^fork: tasks ran in child pid\(s\) .*; async: every task ran in the"
    ),
    "ex17_intermediate_split_nodes": (
        r"^remind\('ada'\) -> 'reminded ada': promoted by the dispatch node, run"
    ),
    "ex18_intermediate_health_and_prune": (
        r"^after pruning, 1 job left: \S+\.broken \(failed, kept\)$"
    ),
    "ex19_intermediate_admin": (
        r"^retried from the admin: flaky -> 'delivered on attempt 2' \(SUCCESSFUL"
    ),
    "ex20_advanced_concurrency": (
        r"^most running at once per key: account:1=1/1, account:2=1/1, export:9=2/2;"
    ),
    "ex21_advanced_queue_control": (
        r"^paused orders waited, then ran: 3 shipped; clear\(\) discarded 2 waiting"
    ),
    "ex22_advanced_discard_on_conflict": (
        r"^after the slot freed: refresh_cache\('acme'\) -> 'refreshed acme'"
    ),
    "ex23_advanced_crash_recovery": (
        r"^after retry_failed_job: crunch\(12\) -> 144 \(SUCCESSFUL on attempt 2"
    ),
    "ex24_advanced_multi_db": r"^welcome\(\d+\) -> 'welcome, ada', run from the 'queue' database$",
    "ex25_advanced_asgi": (
        r"^job ran in uvicorn's pid \d+; after SIGTERM .* 0 dj_queue processes are"
    ),
    "ex26_advanced_gunicorn": (
        r"^SIGTERM: gunicorn exited 0, process rows 6 -> 0 \(all deregistered\)$"
    ),
    "ex27_advanced_many_nodes": r"^\d+ slots -> \d+ tick jobs: each slot fired exactly once$",
    "ex28_advanced_retries_and_timeouts": (
        r"^retried to success on attempt 3; the overrun stopped at its timeout in [\d.]+s"
    ),
    "ex29_advanced_cancel_and_unique": (
        r"^duplicate folded into the first job; the running one stopped [\d.]+s after cancel_job"
    ),
}

# Those that run on every database, not only on SQLite.
ON_EVERY_DATABASE: set[str] = {
    "ex01_basic_enqueue",
    "ex08_basic_recurring",
    "ex14_intermediate_dynamic_recurring",
    "ex17_intermediate_split_nodes",
    "ex20_advanced_concurrency",
    "ex21_advanced_queue_control",
    "ex22_advanced_discard_on_conflict",
    "ex23_advanced_crash_recovery",
    "ex24_advanced_multi_db",
    "ex25_advanced_asgi",
    "ex27_advanced_many_nodes",
    "ex28_advanced_retries_and_timeouts",
    "ex29_advanced_cancel_and_unique",
}

# Those that take longer than a few seconds: run in CI and with DJ_QUEUE_SLOW_TESTS=1.
SLOW: set[str] = {
    "ex14_intermediate_dynamic_recurring",
    "ex17_intermediate_split_nodes",
    "ex18_intermediate_health_and_prune",
    "ex27_advanced_many_nodes",
}


def _examples() -> list[str]:
    return sorted(path.stem for path in EXAMPLES_DIR.glob("ex[0-9][0-9]_*.py"))


def _params() -> list[object]:
    params = []
    for name in _examples():
        # The others behave alike on every database: SQLite's pass runs them.
        if DATABASE != "sqlite" and name not in ON_EVERY_DATABASE:
            continue
        marks = []
        if name in SLOW:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_every_example_has_a_proof_and_the_index_lists_it():
    names = _examples()
    assert len(names) >= 25
    assert set(PROOF) == set(names)
    assert set(names) >= ON_EVERY_DATABASE | SLOW
    index = (EXAMPLES_DIR / "README.md").read_text()
    missing = [name for name in names if f"{name}.py" not in index]
    assert not missing


def _leftover_databases(name: str, pid: int) -> list[str]:
    """Scratch databases the example made (named after it and its pid) still on the server."""
    if DATABASE == "sqlite":
        return []
    prefix = f"dj_queue_{name[:24]}_"
    suffix = f"_{pid}"
    if DATABASE == "postgresql":
        import psycopg

        settings = server_settings("postgresql", "postgres")
        with psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            user=settings["USER"],
            dbname="postgres",
            autocommit=True,
        ) as connection:
            rows = connection.execute("SELECT datname FROM pg_database").fetchall()
    else:
        import MySQLdb

        settings = server_settings("mariadb", "mysql")
        connection = MySQLdb.connect(
            host=settings["HOST"],
            port=int(settings["PORT"]),
            user=settings["USER"],
            password=settings["PASSWORD"],
        )
        try:
            cursor = connection.cursor()
            cursor.execute("SHOW DATABASES")
            rows = list(cursor.fetchall())
        finally:
            connection.close()
    return [row[0] for row in rows if row[0].startswith(prefix) and row[0].endswith(suffix)]


@pytest.mark.parametrize("name", _params())
def test_example(name):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DJ_QUEUE_EXAMPLE_"))
    }
    environment["DJ_QUEUE_EXAMPLE_DB"] = DATABASE
    before = set(Path(tempfile.gettempdir()).glob(f"dj_queue_{name}_*"))
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES_DIR / f"{name}.py")],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"{name} ran for more than 90 s\n{stdout}\n{stderr}")
    output = f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    assert process.returncode == 0, output
    assert re.search(PROOF[name], stdout, flags=re.MULTILINE), output
    assert f"({name} on {DATABASE}: ok," in stdout, output
    assert set(Path(tempfile.gettempdir()).glob(f"dj_queue_{name}_*")) <= before
    assert _leftover_databases(name, process.pid) == []
