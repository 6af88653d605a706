"""Describing the run, the comparison table and the JSON file."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from bench.harness import ROOT
from bench.peer_venv import PEER_VERSION

OURS, PEER, THEIRS = "dj_queue", "dj_queue_pypi", "django_tasks_db"
RAW, RAW_B100 = "raw", "raw_batched_100"
DJANGO = (OURS, PEER, THEIRS)
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


def progress(metric: str, name: str, figures: dict[str, Any]) -> None:
    if "jobs_per_s" in figures:
        shown = f"{figures['jobs_per_s']:.0f} jobs/s"
    else:
        shown = f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms"
    print(f"  {settings.DATABASE}: {metric:<24} {name:<16} {shown}", flush=True)


# Table columns: key in the samples, header lines.
COLUMNS = {
    OURS: ("dj_queue", "(this repo)"),
    PEER: ("dj-queue", PEER_VERSION),
    THEIRS: ("django-", "tasks-db"),
    RAW: ("raw", "per-job"),
    RAW_B100: ("raw", "batch-100"),
}
Getter = Callable[[dict[str, Any]], float]
Source = tuple[str, str, Getter]  # (metric, column key, figure from one sample)


def _field(name: str) -> Getter:
    return lambda sample: sample[name]


def _innodb(name: str) -> Getter:
    return lambda sample: sample["innodb"][name]


def _row_specs(samples: dict[str, Any], database: str) -> dict[str, tuple[str, str, list[Source]]]:
    """Row key -> (label, better, cells)."""

    def n(metric: str) -> int:
        return int(samples[metric][OURS][0]["count"])

    def django(metric: str, getter: Getter, keys: tuple[str, ...] = DJANGO) -> list[Source]:
        return [(metric, key, getter) for key in keys]

    rate, busy = _field("jobs_per_s"), _field("busy_jobs_per_s")
    specs = {
        "enqueue": (
            f"enqueue() jobs/s, N={n('enqueue')} [r]",
            "higher",
            [*django("enqueue", rate), ("enqueue", RAW, rate)],
        ),
        "bulk": (
            f"bulk jobs/s, batches of 500, N={n('bulk')} [r][a]",
            "higher",
            [*django("bulk", rate), ("bulk", RAW, rate)],
        ),
        "drain": (f"drain jobs/s, N={n('drain')} [b]", "higher", django("drain", rate)),
        "drain_busy": (
            "  first start -> last finish [d]",
            "higher",
            [*django("drain", busy), ("drain", RAW, rate), ("drain", RAW_B100, rate)],
        ),
        "drain_4": (
            "drain jobs/s vs 4 db_worker processes [c]",
            "higher",
            [("drain", OURS, rate), ("drain_4", THEIRS, rate)],
        ),
        "drain_4_busy": (
            "  first start -> last finish",
            "higher",
            [("drain", OURS, busy), ("drain_4", THEIRS, busy)],
        ),
    }
    for cut in ("p50", "p95", "p99"):
        label = f"latency {cut} ms, N={n('latency')} at 20/s [l]"
        getter = _field(f"{cut}_ms")
        specs[f"latency_{cut}"] = (
            label,
            "lower",
            [*django("latency", getter), ("latency", RAW, getter)],
        )
    if database == "mariadb":
        for name, label in (
            ("deadlocks", "InnoDB deadlocks"),
            ("row_lock_waits", "row lock waits"),
        ):
            getter = _innodb(name)
            specs[f"drain_{name}"] = (f"{label} in the drain [e]", "count", django("drain", getter))
            specs[f"drain_4_{name}"] = (
                "  with 4 db_worker processes",
                "count",
                [("drain_4", THEIRS, getter)],
            )
    return specs


def metrics(samples: dict[str, Any], database: str) -> dict[str, Any]:
    """One entry per table row: per column the median over the repeats, the min-max, every
    sample's figure, and dj_queue's ratio to it (> 1 when dj_queue is better)."""
    rows = {}
    for key, (label, better, cells) in _row_specs(samples, database).items():
        values: dict[str, float] = {}
        spread: dict[str, list[float]] = {}
        figures: dict[str, list[float]] = {}
        for metric, column, getter in cells:
            found = [getter(sample) for sample in samples[metric].get(column, [])]
            if found:
                figures[column] = found
                values[column] = statistics.median(found)
                spread[column] = [min(found), max(found)]
        ratios = {}
        if better != "count" and OURS in values:
            for column, value in values.items():
                if column != OURS and value and values[OURS]:
                    ours = values[OURS]
                    ratios[column] = value / ours if better == "lower" else ours / value
        rows[key] = {
            "label": label,
            "better": better,
            "values": values,
            "spread": spread,
            "samples": figures,
            "ratios": ratios,
            # As before: dj_queue, django-tasks-db and the ratio of the two.
            OURS: values.get(OURS),
            THEIRS: values.get(THEIRS),
            "ratio": ratios.get(THEIRS),
        }
    return rows


def warnings(results: dict[str, Any]) -> list[str]:
    found = [f"busy machine, figures less reliable: {w}" for w in results["load"]["warnings"]]
    if results["git_end"] != results["git"]:
        found.append("the working tree changed during the run; figures mix versions")
    return found


def table(results: dict[str, Any]) -> str:
    config = results["settings"]
    load = results["load"]
    repeat = results["repeat"]
    lines = [
        "",
        f"{results['database']} ({results['server_version']}), "
        f"CONN_MAX_AGE={config['CONN_MAX_AGE']}, {'quick' if results['quick'] else 'full'} run, "
        f"repeat {repeat}, {results['machine']['cores']} cores, load "
        f"{load['loadavg_start'][0]:.2f} -> {load['loadavg_end'][0]:.2f}, CPU busy between "
        f"measurements {load['idle_busy_fraction_mean']:.0%} (max "
        f"{load['idle_busy_fraction_max']:.0%}), took {results['duration_seconds']:.0f}s",
    ]
    lines += [f"WARNING: {warning}" for warning in results["warnings"]]
    lines.append(
        "ratio: dj_queue vs each (throughput: dj_queue / other; latency: other / dj_queue); "
        "> 1 means dj_queue is better"
        + ("; median of the repeats, min-max below" if repeat > 1 else "")
    )
    others = [key for key in COLUMNS if key != OURS]
    tops = "".join(f"{COLUMNS[key][0]:>{WIDTH}}" for key in COLUMNS)
    lines.append(f"{'':<{LABEL}}{tops} | dj_queue vs")
    bottoms = "".join(f"{COLUMNS[key][1]:>{WIDTH}}" for key in COLUMNS)
    shorts = "".join(f"{SHORT[key]:>{RATIO_WIDTH}}" for key in others)
    lines.append(f"{'metric':<{LABEL}}{bottoms} |{shorts}")
    for row in results["metrics"].values():
        count = row["better"] == "count"
        cells = "".join(f"{_cell(row['values'].get(key), count):>{WIDTH}}" for key in COLUMNS)
        ratios = "".join(f"{_ratio(row['ratios'].get(key)):>{RATIO_WIDTH}}" for key in others)
        lines.append(f"{row['label']:<{LABEL}}{cells} |{ratios}")
        if repeat > 1:
            spread = "".join(f"{_range(row['spread'].get(key)):>{WIDTH}}" for key in COLUMNS)
            lines.append(f"{'    min-max':<{LABEL}}{spread} |")
    lines += _footnotes(results)
    return "\n".join(line.rstrip() for line in lines)


LABEL, WIDTH, RATIO_WIDTH = 44, 12, 9
SHORT = {PEER: PEER_VERSION, THEIRS: "tasks-db", RAW: "raw", RAW_B100: "b100"}


def _cell(value: float | None, count: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if count else _number(value)


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _range(span: list[float] | None) -> str:
    if span is None:
        return ""
    # Kept narrow enough for its column: 10k and above in thousands.
    low, high = (f"{v / 1000:.0f}k" if v >= 10_000 else _number(v) for v in span)
    return f"{low}-{high}"


def _footnotes(results: dict[str, Any]) -> list[str]:
    notes = [
        "[r] median rate of 5 rounds of N/5 jobs, the Django systems taking turns in a rotating"
        " order; raw: one run of N (bench/raw/)",
        f"[a] {BULK_NOTE}; dj-queue {PEER_VERSION}: its enqueue_all; raw: multi-row INSERTs",
        "[b] from subprocess start to last job finished: manage.py dj_queue (1 worker process"
        f" x 4 threads) for dj_queue and dj-queue {PEER_VERSION},",
        "    vs one manage.py db_worker --interval 0.1 --no-startup-delay --batch",
        "[c] the same dj_queue figure vs four such db_worker processes",
        f"[d] first job started -> last finished; dj-queue {PEER_VERSION} keeps no start time"
        " once a job has finished: first finish -> last finish.",
        "    raw: 4 consumer processes, connected before the clock starts, one job (per-job) or"
        " up to 100 (batch-100) per claim;",
        "    it has no start-up to count, so it is compared with this row only",
        "[l] enqueue -> start as each system records it (its claim); dj-queue"
        f" {PEER_VERSION}: the start its running job reports, noted by the task",
        "    (bench/peer_tasks.py); raw (PostgreSQL only): a LISTEN/NOTIFY consumer",
    ]
    if results["database"] == "mariadb":
        notes.append(
            "[e] change in SHOW GLOBAL STATUS Innodb_deadlocks / Innodb_row_lock_waits from"
            " runtime start to last job finished; server-wide"
        )
    if "peer" not in results:
        notes.append(f"dj-queue {PEER_VERSION} left out (--no-peer)")
    if "module" not in results["raw"]:
        notes.append(f"raw: {results['raw']['note']}")
    return notes


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {**results, "notes": {"bulk": BULK_NOTE, "command": sys.argv}}
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
