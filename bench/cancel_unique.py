"""Cancelling running jobs and enqueueing unique ones, measured.

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/cancel_unique.py [--runs 3] [--jobs 1000]

On a scratch database made from the test settings, prints per run and as medians:
- ``cancel_job`` of a running job (Python code in a loop) -> the job recorded
  FAILED with JobCancelledError, in fork mode and in async mode;
- single ``enqueue()`` calls per second of a task with a ``unique_key`` (every
  key new) against the same task without one, side by side, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.recovery import poll, scratch_test_databases, start  # noqa: E402
from dj_queue.api import cancel_job  # noqa: E402
from dj_queue.models import Job  # noqa: E402
from tests.taskapp.tasks import echo, long_running, report_once  # noqa: E402


def cancel_to_stop(mode: str) -> float:
    runtime = start("--mode", mode)
    try:
        result = long_running.enqueue(60)
        poll(lambda: result.refresh() or result.status.value == "RUNNING")
        asked = time.monotonic()
        assert cancel_job(result.id)
        poll(lambda: result.refresh() or result.is_finished)
        assert result.errors[-1].exception_class_path == "dj_queue.exceptions.JobCancelledError"
        return time.monotonic() - asked
    finally:
        runtime.stop()
        runtime.close()


def enqueue_rates(jobs: int, run: int) -> tuple[float, float]:
    """Single enqueues per second: a unique task (every key new) and a plain one,
    each one argument. The plain one takes PostgreSQL's one-statement INSERT; the
    unique one a transaction that writes the row if its key is free, then reads
    the key's holder back."""
    rates = []
    for enqueue in (
        lambda n: report_once.enqueue(f"{run}-{n}"),
        lambda n: echo.enqueue(f"{run}-{n}"),
    ):
        started = time.perf_counter()
        for n in range(jobs):
            enqueue(n)
        rates.append(jobs / (time.perf_counter() - started))
    Job.objects.all().delete()
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    arguments = parser.parse_args()
    with scratch_test_databases():
        rows = []
        for run in range(1, arguments.runs + 1):
            row = (
                cancel_to_stop("fork"),
                cancel_to_stop("async"),
                *enqueue_rates(arguments.jobs, run),
            )
            rows.append(row)
            print(
                f"run {run}: cancel_job -> running job stopped {row[0]:.2f}s (fork), "
                f"{row[1]:.2f}s (async); enqueue unique {row[2]:.0f}/s, plain {row[3]:.0f}/s",
                flush=True,
            )
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(
            f"{connection.vendor}, median of {arguments.runs}: cancel -> stopped "
            f"{medians[0]:.2f}s fork, {medians[1]:.2f}s async; unique enqueue {medians[2]:.0f}/s "
            f"vs plain {medians[3]:.0f}/s = {medians[2] / medians[3]:.2f}x"
        )


if __name__ == "__main__":
    main()
