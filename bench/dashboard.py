"""How fast the operator dashboard and the metrics endpoints are on a big queue.

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/dashboard.py \\
        [--finished 1000000] [--waiting 100000] [--runs 7] [--keep]
    DJ_QUEUE_TEST_DB=mariadb .venv/bin/python bench/dashboard.py

Makes a scratch database (``dj_queue_bench_dashboard``) from the test settings
and fills it in bulk SQL (``bench/bigfill.py``): ``--finished`` finished jobs
over two days, one in a thousand failed, ``--waiting`` waiting jobs (80 %
ready, 15 % scheduled, 5 % blocked; three in four on the ``default`` queue, so
that its counts pass the cap), the finished-jobs tally as the runtime leaves
it, a few dozen claims held by registered processes, a paused queue and some
recurring tasks. ``--keep`` keeps the database, and a later run finding it
filled to the same sizes skips the fill (its tally minutes and heartbeats are
moved to the present); without it the database is dropped at the end.

Then times, after one warm-up, ``--runs`` times each: ``reads.snapshot`` (the
dashboard's reading, and a scrape's with ``dashboard=False``) called directly,
and through ``django.test.Client`` as a superuser the dashboard page, its
panels endpoint, ``dj_queue:metrics`` and ``dj_queue:stats`` (with the cached
reading off, ``cache_seconds`` 0, and on). Each figure is the whole call and
the SQL in it (a ``connection.execute_wrapper`` timing every statement). The
table, a verdict against the targets (SQL under 150 ms and the whole under
300 ms, on the median), and the dashboard reading's three slowest statements
are printed, and everything is saved to ``bench/results/dashboard-<db>.json``.

The run has one task backend, ``default`` (the test settings' ``separate``
backend, on another database, is left out): a single-backend deployment, and
the metrics views read every backend there is.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import InterfaceError, OperationalError, connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from bench import bigfill  # noqa: E402
from dj_queue.reads import snapshot  # noqa: E402

ALIAS = "default"
SCRATCH_NAME = "dj_queue_bench_dashboard"
RESULTS = ROOT / "bench" / "results"
SQL_TARGET_MS = 150.0
TOTAL_TARGET_MS = 300.0
# cache_seconds for the cached measurements: longer than any run takes.
CACHED_SECONDS = 3600.0
SLOWEST_SHOWN = 3
FILL_ATTEMPTS = 3
# Times an item is measured again from its warm-up after a lost connection.
MEASURE_ATTEMPTS = 3

URL_NAMES = {
    "dashboard page": "admin:dj_queue_dashboard",
    "dashboard panels": "admin:dj_queue_dashboard_panels",
    "metrics": "dj_queue:metrics",
    "stats": "dj_queue:stats",
}


def tasks_setting(cache_seconds: float) -> dict[str, Any]:
    """TASKS with the test settings' default backend alone, its metrics
    reading kept ``cache_seconds``."""
    default = copy.deepcopy(settings.TASKS[ALIAS])
    options = default.setdefault("OPTIONS", {})
    options["metrics"] = {**options.get("metrics", {}), "cache_seconds": cache_seconds}
    return {ALIAS: default}


def forget_readings() -> None:
    """Drop the metrics views' kept reading, if this dj_queue keeps one."""
    try:
        from dj_queue.reads.cache import forget
    except ImportError:
        return
    forget()


# -- timing --------------------------------------------------------------------------------


class QueryLog:
    """A ``connection.execute_wrapper``: every statement with its milliseconds."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any, float]] = []

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, params, (time.perf_counter() - started) * 1000))

    @property
    def sql_ms(self) -> float:
        return sum(ms for _, _, ms in self.statements)


@dataclass
class Item:
    name: str
    target: str  # what was called or requested
    available: bool = True
    note: str = ""
    totals: list[float] = field(default_factory=list)
    sqls: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    logs: list[QueryLog] = field(default_factory=list)
    load: float | None = None  # the 1-minute load average as the item started
    size: int | None = None  # bytes of the last response

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    @property
    def measured(self) -> bool:
        return self.available and bool(self.totals)

    def verdict(self) -> str:
        if not self.available:
            return "not available"
        if not self.measured:
            return self.note or "not measured"
        sql, total = self.median(self.sqls), self.median(self.totals)
        missed = []
        if sql >= SQL_TARGET_MS:
            missed.append(f"SQL {sql:.0f} ms >= {SQL_TARGET_MS:.0f}")
        if total >= TOTAL_TARGET_MS:
            missed.append(f"total {total:.0f} ms >= {TOTAL_TARGET_MS:.0f}")
        if missed:
            return "MISSED: " + ", ".join(missed)
        over = max(self.sqls) >= SQL_TARGET_MS or max(self.totals) >= TOTAL_TARGET_MS
        return "ok (a run over target)" if over else "ok"

    def as_json(self) -> dict[str, Any]:
        def figures(values: list[float]) -> dict[str, Any]:
            if not values:
                return {}
            return {
                "median": round(statistics.median(values), 2),
                "max": round(max(values), 2),
                "min": round(min(values), 2),
                "runs": [round(value, 2) for value in values],
            }

        return {
            "name": self.name,
            "target": self.target,
            "available": self.available,
            "note": self.note,
            "total_ms": figures(self.totals),
            "sql_ms": figures(self.sqls),
            "queries": statistics.median(self.queries) if self.queries else None,
            "verdict": self.verdict(),
            "load_1min": self.load,
            "response_bytes": self.size,
        }


def measure(item: Item, call: Callable[[], object], runs: int) -> Item:
    """One warm-up call, then ``runs`` timed ones. A lost connection (the
    server restarted by someone else) starts the item over, warm-up included."""
    for attempt in range(MEASURE_ATTEMPTS):
        try:
            return measure_once(item, call, runs)
        except (OperationalError, InterfaceError) as exc:
            if attempt == MEASURE_ATTEMPTS - 1:
                raise
            print(f"{item.name}: lost the connection ({exc}); measuring again", flush=True)
            item.note = "measured again after a lost connection"
            for values in (item.totals, item.sqls, item.queries, item.logs):
                values.clear()
            bigfill.wait_for_server()
    raise AssertionError("unreachable")


def measure_once(item: Item, call: Callable[[], object], runs: int) -> Item:
    item.load = round(os.getloadavg()[0], 2)
    check(item, call())
    for _ in range(runs):
        log = QueryLog()
        with connection.execute_wrapper(log):
            started = time.perf_counter()
            outcome = call()
            elapsed = (time.perf_counter() - started) * 1000
        if not check(item, outcome):
            return item
        item.totals.append(elapsed)
        item.sqls.append(log.sql_ms)
        item.queries.append(len(log.statements))
        item.logs.append(log)
        if isinstance(outcome, HttpResponse):
            item.size = len(outcome.content)
    return item


def check(item: Item, outcome: object) -> bool:
    """A response that is no 200 stops the item's measuring, and says why."""
    if isinstance(outcome, HttpResponse) and outcome.status_code != 200:
        body = outcome.content[:200].decode(errors="replace").strip()
        item.note = f"HTTP {outcome.status_code}: {body}"
        item.totals.clear()
        item.sqls.clear()
        item.queries.clear()
        return False
    return True


def slowest(item: Item, count: int | None = None) -> list[dict[str, Any]]:
    """The ``count`` (None: all) statements of ``item`` with the slowest
    median, each told apart by its SQL and by how many times it ran before."""
    runs: dict[tuple[str, int], list[float]] = {}
    shown: dict[tuple[str, int], Any] = {}
    for log in item.logs:
        seen: dict[str, int] = {}
        for sql, params, ms in log.statements:
            key = (sql, seen.get(sql, 0))
            seen[sql] = key[1] + 1
            runs.setdefault(key, []).append(ms)
            shown.setdefault(key, params)
    ranked = sorted(runs.items(), key=lambda pair: statistics.median(pair[1]), reverse=True)
    return [
        {
            "sql": sql,
            "params": [str(param) for param in shown[(sql, occurrence)] or ()],
            "median_ms": round(statistics.median(timings), 2),
            "max_ms": round(max(timings), 2),
        }
        for (sql, occurrence), timings in ranked[:count]
    ]


# -- what is measured ----------------------------------------------------------------------


def reverse_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def http_item(client: Client, name: str, url_name: str, runs: int, *, cached: bool | None) -> Item:
    """``url_name`` requested; ``cached`` None leaves the metrics reading's
    cache alone (a view that does not use it), False forgets it before each
    request and sets ``cache_seconds`` 0, True keeps it for the whole run."""
    url = reverse_or_none(url_name)
    if url is None:
        return Item(name, url_name, available=False)
    item = Item(name, url)
    seconds = CACHED_SECONDS if cached else 0.0
    with override_settings(TASKS=tasks_setting(seconds)):
        forget_readings()

        def request() -> HttpResponse:
            if cached is False:
                forget_readings()
            return client.get(url)

        measure(item, request, runs)
    forget_readings()
    return item


def measure_all(runs: int) -> list[Item]:
    client = Client()
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", "bench"
    )
    client.force_login(user)
    items = [
        measure(Item("snapshot, dashboard", 'snapshot("default")'), lambda: snapshot(ALIAS), runs),
        measure(
            Item("snapshot, scrape", 'snapshot("default", dashboard=False)'),
            lambda: snapshot(ALIAS, dashboard=False),
            runs,
        ),
        http_item(client, "dashboard page", URL_NAMES["dashboard page"], runs, cached=None),
        http_item(client, "dashboard panels", URL_NAMES["dashboard panels"], runs, cached=None),
    ]
    for name in ("metrics", "stats"):
        for cached in (False, True):
            label = f"{name}, {'cached' if cached else 'uncached'}"
            items.append(http_item(client, label, URL_NAMES[name], runs, cached=cached))
    return items


# -- the scratch database ------------------------------------------------------------------


@contextmanager
def scratch_database(plan: bigfill.Plan, keep: bool) -> Iterator[dict[str, Any]]:
    """The filled scratch database, reused when a kept one holds ``plan``."""
    original = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = SCRATCH_NAME
    creation = connection.creation
    creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=True)
    try:
        fill: dict[str, Any] = {"reused": True, "seconds": None, "steps": {}}
        found = bigfill.counts()
        if bigfill.holds(plan, found):
            print(f"reusing the filled database {SCRATCH_NAME}", flush=True)
        else:
            if any(found.values()):
                print(f"{SCRATCH_NAME} holds other rows: making it again", flush=True)
                remake(original)
            fill = fill_with_retries(plan, original)
        moved = bigfill.freshen()
        if moved:
            print(f"moved the tally {moved} minutes on, to the present", flush=True)
        yield fill
    finally:
        if keep:
            print(f"kept the database {SCRATCH_NAME} (--keep)")
        else:
            creation.destroy_test_db(original, verbosity=0)
            print(f"dropped the database {SCRATCH_NAME}")


def remake(original: str) -> None:
    """Drop the scratch database and make it again, empty."""
    connection.creation.destroy_test_db(original, verbosity=0)
    connection.settings_dict["TEST"]["NAME"] = SCRATCH_NAME
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)


def fill_with_retries(plan: bigfill.Plan, original: str) -> dict[str, Any]:
    """Fill the empty scratch database; a fill that failed (its server was
    restarted by someone else at a bad moment) is started over, twice at most."""
    for attempt in range(FILL_ATTEMPTS):
        started = time.monotonic()
        try:
            steps = bigfill.fill(plan)
        except (OperationalError, InterfaceError, RuntimeError) as exc:
            if attempt == FILL_ATTEMPTS - 1:
                raise
            print(f"the fill failed ({exc}): starting over", flush=True)
            bigfill.wait_for_server()
            remake(original)
            continue
        seconds = round(time.monotonic() - started, 1)
        print(f"filled in {seconds:.1f}s", flush=True)
        return {"reused": False, "seconds": seconds, "steps": steps, "attempts": attempt + 1}
    raise AssertionError("unreachable")


# -- the facts around the figures ----------------------------------------------------------


def database_name() -> str:
    if connection.vendor == "mysql":
        return "mariadb" if connection.mysql_is_mariadb else "mysql"  # type: ignore[attr-defined]
    return connection.vendor


def server_facts() -> dict[str, str]:
    queries = {"version": "SELECT version()"}
    if connection.vendor == "postgresql":
        queries |= {
            "shared_buffers": "SHOW shared_buffers",
            "work_mem": "SHOW work_mem",
            "effective_cache_size": "SHOW effective_cache_size",
            "jobs table size": "SELECT pg_size_pretty(pg_total_relation_size('dj_queue_job'))",
        }
    else:
        queries |= {
            "innodb_buffer_pool_size": "SELECT @@innodb_buffer_pool_size",
            "jobs table size": (
                "SELECT CONCAT(ROUND((DATA_LENGTH + INDEX_LENGTH) / 1048576), ' MB') "
                "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = 'dj_queue_job'"
            ),
        }
    facts = {}
    with connection.cursor() as cursor:
        for name, sql in queries.items():
            cursor.execute(sql)
            facts[name] = str(cursor.fetchone()[0])
    return facts


def machine_facts() -> dict[str, Any]:
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) // 1024:,} MB"
    return {
        "cpus": os.cpu_count(),
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
    }


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def wait_for_quiet(limit: float, timeout: float = 900.0) -> float:
    """Seconds waited for the 1-minute load average to fall below ``limit``."""
    started = time.monotonic()
    while os.getloadavg()[0] >= limit and time.monotonic() - started < timeout:
        time.sleep(5)
    waited = time.monotonic() - started
    if os.getloadavg()[0] >= limit:
        print(f"load average still {os.getloadavg()[0]:.2f} after {waited:.0f}s: measuring")
    elif waited >= 5:
        print(f"waited {waited:.0f}s for the load average to fall below {limit}")
    return round(waited)


# -- the report ----------------------------------------------------------------------------


def report(items: list[Item], runs: int, slow: list[dict[str, Any]], facts: dict[str, Any]) -> None:
    width = max(len(item.name) for item in items)
    print(
        f"\n{facts['database']}, {facts['plan']['finished']:,} finished + "
        f"{facts['plan']['waiting']:,} waiting jobs: median / max of {runs} runs "
        f"after one warm-up, milliseconds"
    )
    header = (
        f"{'item':<{width}}  {'total ms':>15}  {'SQL ms':>15}  {'queries':>7}  {'load':>5}  verdict"
    )
    print(header)
    print("-" * len(header))
    for item in items:
        shown = "-" if item.load is None else f"{item.load:.1f}"
        if not item.measured:
            dash = "-"
            print(
                f"{item.name:<{width}}  {dash:>15}  {dash:>15}  {dash:>7}  {shown:>5}  "
                f"{item.verdict()}"
            )
            continue
        total = f"{item.median(item.totals):.1f} / {max(item.totals):.1f}"
        sql = f"{item.median(item.sqls):.1f} / {max(item.sqls):.1f}"
        queries = statistics.median(item.queries)
        print(
            f"{item.name:<{width}}  {total:>15}  {sql:>15}  {queries:>7g}  {shown:>5}  "
            f"{item.verdict()}"
        )
    print(
        f"\ntargets: SQL < {SQL_TARGET_MS:.0f} ms and total < {TOTAL_TARGET_MS:.0f} ms "
        "per request (verdicts on the median); load: the 1-minute load average as the "
        "item started"
    )
    print(f"\nthe dashboard reading's {len(slow)} slowest statements (median / max ms):")
    for rank, statement in enumerate(slow, 1):
        sql = " ".join(statement["sql"].split())
        if len(sql) > 400:
            sql = sql[:400] + " …"
        print(f"{rank}. {statement['median_ms']:.1f} / {statement['max_ms']:.1f}  {sql}")


def print_facts(facts: dict[str, Any]) -> None:
    machine = facts["machine"]
    print(
        f"machine: {machine['cpus']} CPUs, {machine['memory']} memory, {machine['platform']}, "
        f"Python {machine['python']}, Django {machine['django']}"
    )
    print("server: " + ", ".join(f"{name} {value}" for name, value in facts["server"].items()))
    print("rows: " + ", ".join(f"{name} {value:,}" for name, value in facts["counts"].items()))
    fill = facts["fill"]
    if fill["reused"]:
        print("fill: reused a kept database (no fill this run)")
    else:
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in fill["steps"].items())
        print(f"fill: {fill['seconds']:.1f}s ({steps})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the filled scratch database")
    parser.add_argument(
        "--quiet-load",
        type=float,
        metavar="LOAD",
        help="before measuring, wait (15 minutes at most) for the 1-minute load average "
        "to fall below LOAD: a machine shared with other work",
    )
    args = parser.parse_args()
    if connection.vendor not in ("postgresql", "mysql"):
        sys.exit(
            "bench/dashboard.py fills its tables in PostgreSQL or MariaDB SQL: run it with "
            "DJ_QUEUE_TEST_DB=postgresql or DJ_QUEUE_TEST_DB=mariadb."
        )
    if args.finished < 1_000 or args.waiting < 100 or args.runs < 1:
        sys.exit("--finished must be at least 1,000, --waiting 100 and --runs 1.")
    plan = bigfill.Plan(finished=args.finished, waiting=args.waiting)
    facts: dict[str, Any] = {
        "database": "",  # asked of the server once the scratch database exists
        "plan": {"finished": plan.finished, "waiting": plan.waiting, "claims": plan.claims},
        "machine": machine_facts(),
        "load_before": load(),
        "targets_ms": {"sql": SQL_TARGET_MS, "total": TOTAL_TARGET_MS},
        "runs": args.runs,
    }
    with ExitStack() as stack:
        stack.enter_context(override_settings(TASKS=tasks_setting(0.0)))
        facts["fill"] = stack.enter_context(scratch_database(plan, args.keep))
        facts["database"] = database_name()
        facts["counts"] = bigfill.counts()
        facts["server"] = server_facts()
        print_facts(facts)
        if args.quiet_load is not None:
            facts["quiet_wait_seconds"] = wait_for_quiet(args.quiet_load)
        print(f"load average before measuring: {' '.join(map(str, load()))}", flush=True)
        items = measure_all(args.runs)
        facts["load_after"] = load()
        statements = slowest(items[0])
        slow = statements[:SLOWEST_SHOWN]
        report(items, args.runs, slow, facts)
        print(
            f"\nload average: {' '.join(map(str, facts['load_before']))} before the run, "
            f"{' '.join(map(str, facts['load_after']))} after measuring"
        )
        facts["items"] = [item.as_json() for item in items]
        facts["dashboard_statements"] = statements  # the slowest first
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"dashboard-{facts['database']}.json"
        path.write_text(json.dumps(facts, indent=2, default=str) + "\n")
        print(f"saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
