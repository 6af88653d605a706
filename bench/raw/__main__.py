"""Standalone raw reference on a scratch database of its own, dropped afterwards:

.venv/bin/python -m bench.raw --database postgresql|sqlite|mariadb [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bench.raw
from bench.raw import DIALECTS, SIZES, measure

PG_SERVER: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MARIADB_SERVER: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": ""}


@contextmanager
def _scratch(vendor: str) -> Iterator[dict[str, Any]]:
    """A database of our own for a standalone run, dropped on exit."""
    name = f"bench_raw_{os.getpid()}"
    if vendor == "postgresql":
        import psycopg

        with psycopg.connect(**PG_SERVER, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            yield {**PG_SERVER, "dbname": name}
        finally:
            with psycopg.connect(**PG_SERVER, dbname="postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    elif vendor == "mariadb":
        import MySQLdb

        admin = MySQLdb.connect(**MARIADB_SERVER)
        try:
            admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            try:
                yield {**MARIADB_SERVER, "database": name}
            finally:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()
    else:
        directory = tempfile.mkdtemp(prefix="bench_raw_")
        try:
            yield {"path": os.path.join(directory, "bench.sqlite3")}
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _table(vendor: str, metrics: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"raw {vendor}",
        f"{'metric':<20}{'jobs/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'count':>8}{'seconds':>9}",
    ]
    for key, metric in metrics.items():
        rate = f"{metric['jobs_per_s']:.0f}" if "jobs_per_s" in metric else "-"
        cuts = [f"{metric[p]:.1f}" if p in metric else "-" for p in ("p50_ms", "p95_ms", "p99_ms")]
        lines.append(
            f"{key:<20}{rate:>10}{cuts[0]:>9}{cuts[1]:>9}{cuts[2]:>9}"
            f"{metric['count']:>8}{metric['seconds']:>9.2f}"
        )
    lines.append("")
    lines += [f"{key}: {metric['description']}" for key, metric in metrics.items()]
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.raw", description=(bench.raw.__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--database", choices=sorted(DIALECTS), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # unwind, so the scratch database is dropped
    try:
        with _scratch(args.database) as connect:
            metrics = measure(args.database, connect, SIZES[args.quick], tag="main")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(_table(args.database, metrics))
    return 0


if __name__ == "__main__":  # not when a spawned consumer re-imports this as __mp_main__
    sys.exit(main())
