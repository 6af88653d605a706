"""Benchmark dj_queue against django-tasks-db, side by side on one database.

    .venv/bin/python bench/run.py [--database sqlite|postgresql|mariadb|all]
                                  [--quick] [--conn-max-age N] [--json PATH]

For a no-op task, on a scratch database made for the run, both systems get:
enqueue() throughput, bulk enqueue throughput (batches of 500), drain throughput
of their real runtime started as ``manage.py`` subprocesses, and enqueue-to-start
latency at 20 jobs/s into an idle runtime. Tables are emptied before every
measurement. Prints one table per database and writes all figures to JSON.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASES = ("sqlite", "postgresql", "mariadb")
SIZES = {
    False: {"enqueue": 2000, "bulk": 20000, "drain": 10000, "latency": 200},
    True: {"enqueue": 500, "bulk": 5000, "drain": 2000, "latency": 60},
}
# Would change the dj_queue configuration under test.
FOREIGN_ENV = ("DJ_QUEUE_CONFIG", "DJ_QUEUE_MODE", "DJ_QUEUE_SKIP_RECURRING")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=(*DATABASES, "all"), default="sqlite")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller counts: about two minutes for all three databases",
    )
    parser.add_argument(
        "--conn-max-age", type=int, default=0, metavar="N", help="CONN_MAX_AGE (default 0)"
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="where to write the figures (default bench/results/<database>-<UTC time>.json; "
        "with --database all, -<database> is added to the name)",
    )
    return parser.parse_args()


def main() -> int:
    return run_database_or_all(parse_args(), run_all, run_one)


def run_database_or_all(
    args: argparse.Namespace,
    run_all: Callable[[argparse.Namespace], int],
    run_one: Callable[[argparse.Namespace], int],
) -> int:
    """A benchmark's entry point: one database, or every one in child processes."""
    # SIGTERM unwinds like Ctrl-C, so runtimes are stopped and the database dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.database == "all":
            return run_all(args)
        return run_one(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_all(args: argparse.Namespace) -> int:
    """One child process per database: Django's settings are fixed once set up."""
    status = 0
    for database in DATABASES:
        command = [sys.executable, __file__, "--database", database]
        command += ["--conn-max-age", str(args.conn_max_age)]
        if args.quick:
            command.append("--quick")
        if args.json:
            path = Path(args.json)
            command += ["--json", str(path.with_name(f"{path.stem}-{database}{path.suffix}"))]
        status = max(status, _run_child(command))
    return status


def _run_child(command: list[str]) -> int:
    child = subprocess.Popen(command)
    try:
        return child.wait()
    finally:
        # Ctrl-C reached the child too; a SIGTERM sent to us alone must be passed on.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait()


def run_one(args: argparse.Namespace) -> int:
    for name in FOREIGN_ENV:
        os.environ.pop(name, None)
    os.environ["DJ_QUEUE_BENCH_DB"] = args.database
    os.environ["DJ_QUEUE_BENCH_CONN_MAX_AGE"] = str(args.conn_max_age)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from bench import report
    from bench.harness import scratch_database

    started = datetime.now(UTC)
    with scratch_database() as name:
        results = report.describe(args.database, args.quick, started)
        results["metrics"] = measure_all(SIZES[args.quick], _runtime_env(name))
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["git_end"] = report.git_state()
    results["duration_seconds"] = (datetime.now(UTC) - started).total_seconds()
    print(report.table(results))
    path = Path(args.json) if args.json else _default_path(args.database, started)
    report.write_json(results, path)
    print(f"figures written to {path}")
    return 0


def _runtime_env(scratch_name: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJ_QUEUE_BENCH_DB_NAME": scratch_name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def _default_path(database: str, started: datetime) -> Path:
    return ROOT / "bench" / "results" / f"{database}-{started:%Y%m%dT%H%M%SZ}.json"


def measure_all(sizes: dict[str, int], env: dict[str, str]) -> dict[str, Any]:
    from bench import measures, report
    from bench.systems import systems

    ours, theirs = systems()

    def both(metric: str, measure: Any, *arguments: Any) -> dict[str, Any]:
        pair = {}
        for system in (ours, theirs):
            pair[system.key] = measure(system, *arguments)
            report.progress(metric, system, pair[system.key])
        return pair

    enqueue = measures.interleaved((ours, theirs), measures.enqueue_throughput, sizes["enqueue"])
    report.progress_pair("enqueue", (ours, theirs), enqueue)
    bulk = measures.interleaved((ours, theirs), measures.bulk_throughput, sizes["bulk"])
    report.progress_pair("bulk", (ours, theirs), bulk)
    drain = both("drain", measures.drain, sizes["drain"], 1, env)
    drain4 = measures.drain(theirs, sizes["drain"], 4, env)
    report.progress("drain, 4 processes", theirs, drain4)
    latency = both("latency", measures.latency, sizes["latency"], env)
    return report.metrics(enqueue, bulk, drain, drain4, latency)


if __name__ == "__main__":
    sys.exit(main())
