"""The chaos scenarios at full size, with one table of what happened.

    .venv/bin/python bench/chaos.py --database postgresql [--jobs 5000] [--only NAME ...]

Runs every scenario of tests/chaos (the test suite runs the same ones small)
against scratch copies of the test databases on the local server: real
``manage.py dj_queue`` nodes in fork mode drain the jobs while workers, whole
nodes and schedulers are SIGKILLed, a node is frozen past its pruning, server
sessions are killed and the server itself is restarted (PostgreSQL through
pg_ctlcluster, MariaDB through its daemon; local servers only). Each row says
how many jobs were enqueued, finished, lost, run twice (with the bound: claims
the faults took from live work), left stuck, and how long recovery took; a
scenario that broke an invariant is listed under the table and makes the exit
status 1. Every process and database it made is gone when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "mariadb"], required=True)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per scenario (5000)")
    parser.add_argument(
        "--job-seconds", type=float, default=0.05, help="how long each job sleeps (0.05)"
    )
    parser.add_argument(
        "--every",
        type=float,
        default=3.0,
        help="seconds between two faults (3); a worker slot killed again within 30 s of "
        "its start is restarted after a growing delay (the crash-loop backoff)",
    )
    parser.add_argument(
        "--recurring-seconds", type=float, default=30.0, help="how long schedules run (30)"
    )
    parser.add_argument(
        "--restarts", type=int, default=3, help="server restarts and node freezes (3)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def _stop_on_term(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the nodes and scratch databases are removed.
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop_on_term)
    os.environ["DJ_QUEUE_TEST_DB"] = args.database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection, connections

    from bench.harness import empty_tables
    from bench.recovery import scratch_test_databases
    from tests.chaos.report import table
    from tests.chaos.scenarios import SCENARIOS, Scale, Stage, not_applicable

    names = args.only or list(SCENARIOS)
    unknown = set(names) - SCENARIOS.keys()
    if unknown:
        print(f"--only: unknown scenario(s) {sorted(unknown)}; pick from {list(SCENARIOS)}")
        return 2
    scale = Scale(
        jobs=args.jobs,
        job_seconds=args.job_seconds,
        every=args.every,
        deadline=max(600.0, args.jobs * args.job_seconds),
        recurring_seconds=args.recurring_seconds,
        restarts=args.restarts,
        enqueuers=8,
    )
    reports = []
    with scratch_test_databases(), tempfile.TemporaryDirectory(prefix="dj_queue_chaos_") as tmp:
        env = {
            **os.environ,
            "DJ_QUEUE_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
            "DJ_QUEUE_TEST_QUEUE_DB_NAME": str(connections["queue"].settings_dict["NAME"]),
            "PYTHONPATH": str(ROOT),
        }
        for index, name in enumerate(names):
            reason = not_applicable(name)
            if reason:
                print(f"{name}: skipped ({reason})")
                continue
            empty_tables()
            connections.close_all()
            workdir = Path(tmp) / name
            stage = Stage(env=env, database=args.database, workdir=workdir, seed=args.seed + index)
            started = time.monotonic()
            print(f"{name}: running ...", flush=True)
            report = SCENARIOS[name](stage, scale)
            connections.close_all()
            print(
                f"{name}: {len(report.problems)} problem(s), {time.monotonic() - started:.0f}s",
                flush=True,
            )
            reports.append(report)
    print()
    print(f"## {args.database}: {args.jobs:,} jobs per scenario, a fault every {args.every}s")
    print()
    print(table(reports))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    out = results / f"chaos-{args.database}.json"
    out.write_text(json.dumps([asdict(report) for report in reports], indent=2, default=str))
    print(f"\n(written to {out.relative_to(ROOT)})")
    return 1 if any(report.problems for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
