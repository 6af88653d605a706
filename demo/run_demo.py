#!/usr/bin/env python
"""Run the dj_queue demo end to end.

Creates a fresh SQLite database in a temporary directory, migrates it, enqueues a
mix of jobs (immediate, scheduled, prioritised, on several queues, one meant to
fail, one bulk batch, three limited to one at a time), starts the real runtime
(``manage.py dj_queue``) as a subprocess, shows progress once a second until
every job has finished and a recurring task has fired at least twice, stops the
runtime with SIGTERM and prints what each job returned.

Exits 0 when the runtime stopped cleanly and every job ended as expected.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.tasks import TaskResult
    from django.tasks.base import TaskError

    from dj_queue.backend import DjQueueBackend

DEMO_DIR = Path(__file__).resolve().parent
MANAGE_PY = DEMO_DIR / "manage.py"
SCHEDULE_AHEAD = timedelta(seconds=3)
STARTUP_TIMEOUT = 20.0
LOG_TAIL_LINES = 40
RESULT_WIDTH = 64
STATES = ("ready", "scheduled", "running", "successful", "failed")
RECURRING_KEY = "metrics_snapshot"
RECURRING_FIRINGS = 2


class DemoError(Exception):
    """A failure the runner explains, then exits non-zero for."""


@dataclass(frozen=True, slots=True)
class Runtime:
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float  # time.monotonic() at launch
    started_wall: datetime


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds from the runtime's start to wait for every job (default: %(default)s)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (database and runtime log) after a successful run",
    )
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


# -- setup ------------------------------------------------------------------------


def setup_django(workdir: Path) -> Path:
    """Point the settings at a fresh database file; the runtime inherits the env."""
    database = workdir / "demo.sqlite3"
    os.environ["DJ_QUEUE_DEMO_DB"] = str(database)
    # Forced, not defaulted: a DJANGO_SETTINGS_MODULE left in the shell must not win.
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_project.settings"
    import django

    django.setup()
    return database


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def queue_backend() -> DjQueueBackend:
    from django.tasks import task_backends

    from dj_queue.backend import DjQueueBackend

    backend = task_backends["default"]
    if not isinstance(backend, DjQueueBackend):
        raise DemoError(f"TASKS['default'] is {type(backend).__name__}, not DjQueueBackend")
    return backend


# -- enqueueing -------------------------------------------------------------------


def enqueue_jobs(backend: DjQueueBackend) -> list[TaskResult]:
    from django.utils import timezone
    from shop.tasks import (
        add,
        charge_card,
        export_customer,
        render_report,
        resize_image,
        send_welcome_email,
        sync_inventory,
    )

    results = [
        send_welcome_email.enqueue("ada@example.com"),
        send_welcome_email.using(priority=10).enqueue("grace@example.com"),
        add.enqueue(2, 3),
        add.using(priority=-20).enqueue(40, 2),
        render_report.enqueue("2025-10"),
        render_report.using(queue_name="reports_quarterly").enqueue("2025-Q3"),
        resize_image.using(priority=50).enqueue(7, 1200),
        charge_card.using(priority=20).enqueue(1001),
        charge_card.using(priority=20).enqueue(1002),
        sync_inventory.enqueue("SKU-42"),
    ]
    immediate = len(results)

    later = timezone.now() + SCHEDULE_AHEAD
    results += [
        send_welcome_email.using(run_after=later).enqueue("linus@example.com"),
        render_report.using(run_after=later).enqueue("2025-11"),
    ]

    # One transaction for the whole batch, as an import or a fan-out would do.
    batch = [(resize_image, [image_id, 320], {}) for image_id in range(100, 110)]
    results += backend.enqueue_all(batch)

    # Limited to one at a time per customer: these three run one after another.
    exports = [export_customer.enqueue(7, part) for part in ("orders", "invoices", "reviews")]
    results += exports

    say(
        f"enqueued {len(results)} jobs: {immediate} immediate, 2 scheduled "
        f"{SCHEDULE_AHEAD.total_seconds():g}s ahead, {len(batch)} in one enqueue_all batch, "
        f"{len(exports)} exports of one customer limited to one at a time"
    )
    return results


# -- the runtime ------------------------------------------------------------------


def start_runtime(workdir: Path) -> Runtime:
    from django.utils import timezone

    log_path = workdir / "runtime.log"
    env = {**os.environ, "DJ_QUEUE_DEMO_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        # The child keeps its own copy of the file descriptor.
        process = subprocess.Popen(
            [sys.executable, str(MANAGE_PY), "dj_queue"],
            cwd=DEMO_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Runtime(process, log_path, time.monotonic(), timezone.now())


def wait_until_started(runtime: Runtime, backend: DjQueueBackend) -> None:
    """Wait for every configured worker and dispatcher to register itself."""
    from dj_queue.models import Process

    config = backend.config
    expected = {
        "worker": sum(worker.processes for worker in config.workers),
        "dispatcher": len(config.dispatchers),
        "scheduler": 1,
    }
    deadline = runtime.started_at + STARTUP_TIMEOUT
    while True:
        exit_code = runtime.process.poll()
        if exit_code is not None:
            raise DemoError(f"the runtime exited with code {exit_code} while starting")
        registered = Counter(Process.objects.values_list("kind", flat=True))
        if all(registered[kind] >= count for kind, count in expected.items()):
            break
        if time.monotonic() > deadline:
            raise DemoError(f"the runtime did not start within {STARTUP_TIMEOUT:g}s")
        time.sleep(0.1)
    elapsed = time.monotonic() - runtime.started_at
    say(
        f"runtime up (pid {runtime.process.pid}) after {elapsed:.1f}s: "
        f"{expected['worker']} workers, {expected['dispatcher']} dispatcher, 1 scheduler"
    )


def stop_runtime(runtime: Runtime, backend: DjQueueBackend) -> None:
    # SIGTERM is the graceful stop: workers finish their jobs, then deregister.
    runtime.process.send_signal(signal.SIGTERM)
    grace = backend.config.shutdown_timeout + 15
    try:
        exit_code = runtime.process.wait(grace)
    except subprocess.TimeoutExpired:
        raise DemoError(f"the runtime did not exit within {grace:g}s of SIGTERM") from None
    if exit_code != 0:
        raise DemoError(f"the runtime exited with code {exit_code} after SIGTERM")
    say(f"runtime stopped cleanly (exit code 0) at t={elapsed(runtime):.1f}s")


def kill_if_running(runtime: Runtime) -> None:
    if runtime.process.poll() is not None:
        return
    runtime.process.terminate()
    try:
        runtime.process.wait(10)
    except subprocess.TimeoutExpired:
        runtime.process.kill()
        runtime.process.wait()


def log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty)"


def elapsed(runtime: Runtime) -> float:
    return time.monotonic() - runtime.started_at


# -- progress ---------------------------------------------------------------------


def fetch_results(backend: DjQueueBackend, jobs: list[TaskResult]) -> list[TaskResult]:
    return [backend.get_result(job.id) for job in jobs]


def count_states(backend: DjQueueBackend, jobs: list[TaskResult]) -> Counter[str]:
    from dj_queue.models import ScheduledExecution

    # get_result reports a job waiting for its run_after as READY; the scheduled
    # table tells the two apart. A job promoted between the two reads still
    # counts as scheduled, one tick late, never twice.
    scheduled = {
        str(job_id)
        for job_id in ScheduledExecution.objects.filter(
            job_id__in=[job.id for job in jobs]
        ).values_list("job_id", flat=True)
    }
    counts: Counter[str] = Counter()
    for result in fetch_results(backend, jobs):
        state = result.status.value.lower()
        if state == "ready" and result.id in scheduled:
            state = "scheduled"
        counts[state] += 1
    return counts


def progress_line(seconds: float, counts: Counter[str]) -> str:
    return f"t={seconds:4.1f}s  " + "  ".join(f"{state} {counts[state]:2d}" for state in STATES)


def watch_progress(
    runtime: Runtime, backend: DjQueueBackend, jobs: list[TaskResult], timeout: float
) -> None:
    """Print one line a second until every job has finished."""
    next_tick = 0.0
    while True:
        exit_code = runtime.process.poll()
        if exit_code is not None:
            raise DemoError(f"the runtime exited with code {exit_code} before every job finished")
        counts = count_states(backend, jobs)
        finished = counts["successful"] + counts["failed"] == len(jobs)
        now = elapsed(runtime)
        if finished or now >= next_tick:
            print(progress_line(now, counts), flush=True)
            next_tick = int(now) + 1.0
        if finished:
            say(f"all {len(jobs)} jobs finished at t={now:.1f}s")
            return
        if now > timeout:
            raise DemoError(
                f"{len(jobs) - counts['successful'] - counts['failed']} job(s) "
                f"still unfinished after {timeout:g}s"
            )
        # Polled faster than printed, so the end is noticed promptly.
        time.sleep(0.2)


def recurring_results(backend: DjQueueBackend) -> list[TaskResult]:
    """The jobs the scheduler fired for the recurring task so far, oldest first."""
    from dj_queue.models import RecurringExecution

    job_ids = RecurringExecution.objects.filter(task_key=RECURRING_KEY).order_by("run_at")
    return [backend.get_result(str(job_id)) for job_id in job_ids.values_list("job_id", flat=True)]


def wait_for_recurring(runtime: Runtime, backend: DjQueueBackend, timeout: float) -> None:
    """Until the recurring task has fired, and its jobs run, RECURRING_FIRINGS times."""
    from django.tasks import TaskResultStatus

    while True:
        done = [
            result
            for result in recurring_results(backend)
            if result.status == TaskResultStatus.SUCCESSFUL
        ]
        if len(done) >= RECURRING_FIRINGS:
            say(f"recurring task {RECURRING_KEY!r} fired and ran {len(done)} times")
            return
        if runtime.process.poll() is not None:
            raise DemoError(f"the runtime exited with code {runtime.process.returncode}")
        if elapsed(runtime) > timeout:
            raise DemoError(f"{RECURRING_KEY!r} ran {len(done)} times in {timeout:g}s")
        time.sleep(0.2)


# -- summary ----------------------------------------------------------------------


def call_label(result: TaskResult) -> str:
    arguments = [repr(arg) for arg in result.args]
    arguments += [f"{key}={value!r}" for key, value in result.kwargs.items()]
    return f"{result.task.name}({', '.join(arguments)})"


def error_text(error: TaskError) -> str:
    lines = error.traceback.strip().splitlines()
    # A traceback ends with "ValueError: card declined": keep what follows the class.
    _, separator, message = (lines[-1] if lines else "").partition(": ")
    return f"{error.exception_class_path}: {message}" if separator else error.exception_class_path


def outcome(result: TaskResult) -> str:
    from django.tasks import TaskResultStatus

    if result.status == TaskResultStatus.SUCCESSFUL:
        return json.dumps(result.return_value, ensure_ascii=False)
    if result.status == TaskResultStatus.FAILED and result.errors:
        return error_text(result.errors[-1])
    return "-"


def finished_offset(result: TaskResult, runtime: Runtime) -> str:
    if result.finished_at is None:
        return "-"
    return f"+{(result.finished_at - runtime.started_wall).total_seconds():.1f}s"


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(results: list[TaskResult], runtime: Runtime) -> None:
    header = ("task", "queue", "priority", "status", "finished", "return value or error")
    rows = [
        (
            call_label(result),
            result.task.queue_name,
            str(result.task.priority),
            result.status.value,
            finished_offset(result, runtime),
            shorten(outcome(result), RESULT_WIDTH),
        )
        for result in results
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    # Numbers read best right-aligned.
    right = {2, 4}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    print()
    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
    print()


def expected_statuses(result: TaskResult) -> tuple[str, ...]:
    from shop.tasks import DECLINED_ORDER_ID

    if result.task.name == "charge_card" and result.args == [DECLINED_ORDER_ID]:
        return ("FAILED",)
    if result.task.name == "snapshot_metrics":
        # A slot that fired as the runtime was stopping waits for the next start.
        return ("SUCCESSFUL", "READY")
    return ("SUCCESSFUL",)


def report(results: list[TaskResult], runtime: Runtime) -> list[str]:
    """Print the table and totals; return what did not end as expected."""
    print_table(results, runtime)
    totals = Counter(result.status.value for result in results)
    order = ("SUCCESSFUL", "FAILED", "RUNNING", "READY")
    summary = ", ".join(f"{totals[status]} {status.lower()}" for status in order if totals[status])
    print(f"{len(results)} jobs: {summary}")
    return [
        f"{call_label(result)} ended {result.status.value}, "
        f"expected {' or '.join(expected_statuses(result))}"
        for result in results
        if result.status.value not in expected_statuses(result)
    ]


# -- main -------------------------------------------------------------------------


def run(workdir: Path, timeout: float) -> int:
    database = setup_django(workdir)
    migrate()
    say(f"migrated a fresh database at {database}")
    backend = queue_backend()
    jobs = enqueue_jobs(backend)

    runtime = start_runtime(workdir)
    say(f"started `manage.py dj_queue`, logging to {runtime.log_path}")
    try:
        wait_until_started(runtime, backend)
        watch_progress(runtime, backend, jobs, timeout)
        wait_for_recurring(runtime, backend, timeout)
        stop_runtime(runtime, backend)
    except DemoError as exc:
        kill_if_running(runtime)
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        print(f"--- last lines of {runtime.log_path} ---", file=sys.stderr)
        print(log_tail(runtime.log_path), file=sys.stderr)
        return 1
    finally:
        kill_if_running(runtime)

    unexpected = report(fetch_results(backend, jobs) + recurring_results(backend), runtime)
    if unexpected:
        print("\ndemo failed: some jobs did not end as expected:", file=sys.stderr)
        for problem in unexpected:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("every job ended as expected (charge_card(1002) is meant to fail: card declined)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="dj_queue_demo_"))
    try:
        status = run(workdir, args.timeout)
    except KeyboardInterrupt:
        status = 130
    if status == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say(f"kept {workdir} (database and runtime.log)")
    say(f"demo took {time.monotonic() - started:.1f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
