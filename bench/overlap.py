"""What bench/concurrency.py checks a drain with: the most jobs of one key seen
running at once (from the tasks' ledger and from the job rows), and the
database server's lock counters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def server_counters() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            )
            return {"deadlocks": cursor.fetchone()[0]}
        if connection.vendor == "mysql":
            # Server-wide: anything else the server runs meanwhile counts too.
            cursor.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name IN "
                "('Innodb_deadlocks', 'Innodb_row_lock_waits')"
            )
            names = {"Innodb_deadlocks": "deadlocks*", "Innodb_row_lock_waits": "row lock waits*"}
            return {names[name]: int(value) for name, value in cursor.fetchall()}
    return {}


def ledger_overlap(ledger: Path, count: int) -> dict[str, int]:
    """Most jobs of each key between their start and end lines at one instant."""
    events: dict[str, list[tuple[int, int]]] = {}
    seen: dict[str, list[int]] = {"start": [], "end": []}
    for line in ledger.read_text().splitlines():
        event, stamp, key, n = line.split()
        events.setdefault(key, []).append((int(stamp), 1 if event == "start" else -1))
        seen[event].append(int(n))
    # Every job ran once: one start and one end line for each number.
    for event, numbers in seen.items():
        if sorted(numbers) != list(range(count)):
            raise RuntimeError(
                f"ledger {ledger.name}: {len(numbers)} {event} lines ({len(set(numbers))} jobs), "
                f"expected one for each of {count} jobs"
            )
    return {key: _sweep(marks) for key, marks in sorted(events.items())}


def row_overlap() -> dict[str, int]:
    """The same over each job row's started_at..finished_at (claim to completion)."""
    from dj_queue.models import Job

    events: dict[str, list[tuple[int, int]]] = {}
    for args, started, finished in Job.objects.values_list("args", "started_at", "finished_at"):
        marks = events.setdefault(args[0], [])
        marks += [(_micros(started), 1), (_micros(finished), -1)]
    return {key: _sweep(marks) for key, marks in sorted(events.items())}


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _sweep(marks: list[tuple[int, int]]) -> int:
    # At one instant an end counts before a start: touching is not overlapping.
    running = most = 0
    for _, change in sorted(marks):
        running += change
        most = max(most, running)
    return most
