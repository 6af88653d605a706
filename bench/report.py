"""Describing the run, the comparison table and the JSON file."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from bench.harness import ROOT
from bench.systems import System

OURS, THEIRS = "dj_queue", "django_tasks_db"
BULK_NOTE = "django-tasks-db has no enqueue_all: enqueue() x500 inside one transaction.atomic()"


def describe(database: str, quick: bool, started: datetime) -> dict[str, Any]:
    return {
        "database": database,
        "server_version": _server_version(),
        "timestamp": started.isoformat(),
        "quick": quick,
        "versions": {
            "python": platform.python_version(),
            **{name: importlib.metadata.version(name) for name in _PACKAGES},
        },
        "git": git_state(),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "settings": _settings(),
    }


_PACKAGES = ("django", "dj-queue", "django-tasks-db", "psycopg", "mysqlclient")


def _server_version() -> str:
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        return str(cursor.fetchone()[0]).split(" on ")[0]


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.rstrip()

    # The working tree is what runs, and it may hold uncommitted changes: name them,
    # and fingerprint the diff so two runs of the same tree can be recognised.
    changed = [line for line in git("status", "--porcelain").splitlines() if line]
    diff = hashlib.sha256(git("diff", "HEAD").encode()).hexdigest()[:16]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": changed, "diff_sha256": diff}


def _settings() -> dict[str, Any]:
    db = connection.settings_dict
    return {
        "ENGINE": db["ENGINE"],
        "CONN_MAX_AGE": db["CONN_MAX_AGE"],
        "database_OPTIONS": db["OPTIONS"],
        "dj_queue_OPTIONS": settings.TASKS["default"]["OPTIONS"],
    }


def progress(metric: str, system: System, figures: dict[str, Any]) -> None:
    if "jobs_per_s" in figures:
        shown = f"{figures['jobs_per_s']:.0f} jobs/s"
    else:
        shown = f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms"
    print(f"  {settings.DATABASE}: {metric:<20} {system.name:<16} {shown}", flush=True)


def progress_pair(metric: str, pair: tuple[System, System], figures: dict[str, Any]) -> None:
    for system in pair:
        progress(metric, system, figures[system.key])


def metrics(
    enqueue: dict[str, Any],
    bulk: dict[str, Any],
    drain: dict[str, Any],
    drain4: dict[str, Any],
    latency: dict[str, Any],
) -> dict[str, Any]:
    """One entry per table row; the ratio is > 1 when dj_queue is better."""
    n = {
        "enqueue": enqueue[OURS]["count"],
        "bulk": bulk[OURS]["count"],
        "drain": drain[OURS]["count"],
        "latency": latency[OURS]["count"],
    }
    rows = {
        "enqueue": _row(f"enqueue() jobs/s, N={n['enqueue']} [r]", enqueue, "jobs_per_s"),
        "bulk": _row(
            f"bulk enqueue jobs/s, batches of 500, N={n['bulk']} [r][a]", bulk, "jobs_per_s"
        ),
        "drain": _row(f"drain jobs/s, N={n['drain']} [b]", drain, "jobs_per_s"),
        "drain_busy": _row("  first start -> last finish", drain, "busy_jobs_per_s"),
        "drain_4": _row(
            "drain jobs/s vs 4 db_worker processes [c]",
            {OURS: drain[OURS], THEIRS: drain4},
            "jobs_per_s",
        ),
        "drain_4_busy": _row(
            "  first start -> last finish", {OURS: drain[OURS], THEIRS: drain4}, "busy_jobs_per_s"
        ),
    }
    for cut in ("p50", "p95", "p99"):
        label = f"latency {cut} ms, N={n['latency']} at 20/s"
        rows[f"latency_{cut}"] = _row(label, latency, f"{cut}_ms", lower_is_better=True)
    return rows


def _row(
    label: str, pair: dict[str, Any], field: str, *, lower_is_better: bool = False
) -> dict[str, Any]:
    ours, theirs = pair[OURS][field], pair[THEIRS][field]
    ratio = theirs / ours if lower_is_better else ours / theirs
    return {
        "label": label,
        "better": "lower" if lower_is_better else "higher",
        OURS: ours,
        THEIRS: theirs,
        "ratio": ratio,
        "details": {OURS: pair[OURS], THEIRS: pair[THEIRS]},
    }


def table(results: dict[str, Any]) -> str:
    config = results["settings"]
    machine = results["machine"]
    load = f"{machine['loadavg_start'][0]:.1f} -> {machine['loadavg_end'][0]:.1f}"
    lines = [
        "",
        f"{results['database']} ({results['server_version']}), "
        f"CONN_MAX_AGE={config['CONN_MAX_AGE']}, {'quick' if results['quick'] else 'full'} run, "
        f"{machine['cores']} cores, load {load}, took {results['duration_seconds']:.0f}s",
        "ratio > 1 means dj_queue is better (throughput: dj_queue / django-tasks-db; "
        "latency: django-tasks-db / dj_queue)",
        f"{'metric':<52} {'dj_queue':>10} {'django-tasks-db':>16} {'ratio':>7}",
    ]
    if results["git_end"] != results["git"]:
        lines.insert(2, "WARNING: the working tree changed during the run; figures mix versions")
    for row in results["metrics"].values():
        lines.append(
            f"{row['label']:<52} {_number(row[OURS]):>10} {_number(row[THEIRS]):>16} "
            f"{row['ratio']:>7.2f}"
        )
    lines += [
        "[r] median rate of 5 rounds of N/5 jobs, the two systems taking turns",
        f"[a] {BULK_NOTE}",
        "[b] from subprocess start to last job finished: manage.py dj_queue (1 worker process"
        " x 4 threads)",
        "    vs one manage.py db_worker --interval 0.1 --no-startup-delay --batch",
        "[c] the same dj_queue figure vs four such db_worker processes",
    ]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {**results, "notes": {"bulk": BULK_NOTE, "command": sys.argv}}
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
