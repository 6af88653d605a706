"""Retries and timeouts, measured end to end and at the operations layer.

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/retries.py [--runs 3] [--jobs 2000]

On a scratch database made from the test settings, prints per run and as medians:
- SIGKILL of the worker child running a job with ``max_attempts=2`` -> the job
  SUCCESSFUL on its second attempt (fork mode, ``retry_delay=0``);
- an attempt's timeout deadline (``timeout=1``, blocked in ``time.sleep``) ->
  its failure recorded with JobTimeoutError, in fork and in async mode;
- the failure transition itself: ``fail_job`` on claimed jobs whose policy
  retries them (back to scheduled) against jobs that fail for good, side by
  side, as jobs per second and their ratio.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.tasks import task_backends  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.recovery import poll, scratch_test_databases, start  # noqa: E402
from dj_queue.models import Job  # noqa: E402
from dj_queue.operations.claims import claim_jobs  # noqa: E402
from dj_queue.operations.jobs import FailOutcome, JobError, fail_job  # noqa: E402
from dj_queue.operations.processes import register_process  # noqa: E402
from tests.taskapp.tasks import add, crash_once, flaky, overrun  # noqa: E402


def kill_to_retried_success() -> float:
    runtime = start("--mode", "fork")
    marker = Path(tempfile.mkdtemp()) / "pid"
    try:
        result = crash_once.enqueue(str(marker))
        pid = int(poll(lambda: marker.exists() and marker.read_text()))
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        poll(lambda: result.refresh() or result.status.value == "SUCCESSFUL")
        return time.monotonic() - killed
    finally:
        runtime.stop()
        runtime.close()


def deadline_to_recorded_failure(mode: str) -> float:
    runtime = start("--mode", mode)
    try:
        result = overrun.enqueue(30)
        poll(lambda: result.refresh() or result.status.value == "RUNNING")
        poll(lambda: result.refresh() or result.is_finished)
        job = Job.objects.get(pk=result.id)
        assert job.errors[-1]["exception_class_path"] == "dj_queue.exceptions.JobTimeoutError"
        # The attempt began at last_attempted_at; its deadline was a timeout later.
        deadline = job.last_attempted_at.timestamp() + float(job.timeout)
        return job.finished_at.timestamp() - deadline
    finally:
        runtime.kill_tree()
        runtime.close()


def failure_transitions(jobs: int) -> tuple[float, float]:
    """Jobs per second through fail_job: retried (to scheduled) vs failed for good."""
    process = register_process("default", kind="worker", name="bench", backend_alias="default")
    backend = task_backends["default"]
    error = JobError.from_exception(ValueError("bench"))
    rates = []
    for task, expected in ((flaky, FailOutcome.RETRYING), (add, FailOutcome.FAILED)):
        args = [1] if task is flaky else [1, 2]
        backend.enqueue_all([(task, args, {})] * jobs)
        claimed = []
        while len(claimed) < jobs:
            claimed += claim_jobs(
                "default", process_id=process.pk, worker_id="bench", selectors=("*",), limit=500
            )
        started = time.perf_counter()
        for job in claimed:
            assert fail_job("default", job.id, process.pk, error, now=timezone.now()) == expected
        rates.append(jobs / (time.perf_counter() - started))
        # Gone before the next run's runtime starts, which would run them all.
        Job.objects.filter(pk__in=[job.id for job in claimed]).delete()
    process.delete()
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2000)
    arguments = parser.parse_args()
    with scratch_test_databases():
        rows = []
        for run in range(1, arguments.runs + 1):
            row = (
                kill_to_retried_success(),
                deadline_to_recorded_failure("fork"),
                deadline_to_recorded_failure("async"),
                *failure_transitions(arguments.jobs),
            )
            rows.append(row)
            print(
                f"run {run}: SIGKILL -> retried job SUCCESSFUL {row[0]:.2f}s; timeout deadline "
                f"-> failure recorded {row[1]:.2f}s (fork), {row[2]:.2f}s (async); fail_job "
                f"retried {row[3]:.0f}/s, failed {row[4]:.0f}/s",
                flush=True,
            )
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(
            f"{connection.vendor}, median of {arguments.runs}: SIGKILL -> retried success "
            f"{medians[0]:.2f}s; deadline -> recorded failure {medians[1]:.2f}s fork, "
            f"{medians[2]:.2f}s async; retry path {medians[3]:.0f}/s vs plain failure "
            f"{medians[4]:.0f}/s = {medians[3] / medians[4]:.2f}x"
        )


if __name__ == "__main__":
    main()
