"""How fast the runtime recovers from dead processes, measured end to end.

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/recovery.py [--runs 3]

Runs real ``manage.py dj_queue`` subprocesses (fork mode) against a scratch
database made from the test settings (heartbeat every 1 s, presumed dead after
5 s) and prints, per run and as medians:
- SIGKILL of a worker child -> its job recorded FAILED (ProcessExitError);
- SIGKILL of a worker child -> a replacement worker registered;
- SIGKILL of a whole node (supervisor and children) -> a live node has pruned it
  and failed its job (ProcessPrunedError).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402

from dj_queue.models import ClaimedExecution, Process  # noqa: E402
from tests.conftest import Runtime  # noqa: E402
from tests.taskapp.tasks import sleep_for  # noqa: E402


def poll(predicate, timeout: float = 60.0, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met")


def start(*args: str) -> Runtime:
    env = {
        **os.environ,
        "DJ_QUEUE_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "DJ_QUEUE_TEST_QUEUE_DB_NAME": str(connections["queue"].settings_dict["NAME"]),
        "PYTHONPATH": str(ROOT),
    }
    runtime = Runtime(["--mode", "fork", *args], env)
    kind = "dispatcher" if "--only-dispatch" in args else "worker"
    runtime.wait_for_log(f"dj_queue: {kind} started")
    return runtime


@contextlib.contextmanager
def scratch_test_databases() -> Iterator[str]:
    """Scratch copies of every alias of the test settings (the runtime's checks
    look at all of them); yields the default one's name, drops them all after."""
    created = {
        alias: connections[alias].creation.create_test_db(verbosity=0, autoclobber=True)
        for alias in connections
    }
    try:
        yield created["default"]
    finally:
        connections.close_all()
        for alias, name in created.items():
            connections[alias].creation.destroy_test_db(name, verbosity=0)


def claimed_process() -> Process | None:
    claim = ClaimedExecution.objects.select_related("process").first()
    return claim.process if claim else None


def failed_with(result, error_class: str) -> bool:
    result.refresh()
    return result.is_finished and result.errors[-1].exception_class_path == error_class


def worker_kill() -> tuple[float, float]:
    runtime = start()
    try:
        result = sleep_for.enqueue(60)
        worker = poll(claimed_process)
        killed = time.monotonic()
        os.kill(worker.pid, signal.SIGKILL)
        poll(lambda: failed_with(result, "dj_queue.exceptions.ProcessExitError"))
        to_failed = time.monotonic() - killed
        poll(lambda: Process.objects.filter(kind="worker").exclude(pk=worker.pk).exists())
        to_replacement = time.monotonic() - killed
        return to_failed, to_replacement
    finally:
        runtime.stop()
        runtime.close()


def node_death() -> float:
    dead = start("--only-work")
    live = None
    try:
        result = sleep_for.enqueue(60)
        poll(claimed_process)
        live = start("--only-dispatch")
        killed = time.monotonic()
        dead.kill_tree()
        poll(lambda: failed_with(result, "dj_queue.exceptions.ProcessPrunedError"))
        return time.monotonic() - killed
    finally:
        dead.close()
        if live is not None:
            live.stop()
            live.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    options = django.conf.settings.TASKS["default"]["OPTIONS"]
    # Every alias the runtime's checks look at must exist: make scratch copies of all.
    created = {
        alias: connections[alias].creation.create_test_db(verbosity=0, autoclobber=True)
        for alias in connections
    }
    test_name = created["default"]
    try:
        rows = []
        for run in range(1, runs + 1):
            to_failed, to_replacement = worker_kill()
            to_pruned = node_death()
            rows.append((to_failed, to_replacement, to_pruned))
            print(
                f"run {run}: worker SIGKILL -> job failed {to_failed:.2f}s, "
                f"-> replacement registered {to_replacement:.2f}s; "
                f"node SIGKILL -> pruned and job failed {to_pruned:.2f}s",
                flush=True,
            )
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        heartbeat = options["process_heartbeat_interval"]
        threshold = options["process_alive_threshold"]
        print(
            f"{connection.vendor} ({test_name}), heartbeat {heartbeat}s, "
            f"alive threshold {threshold}s, median of {runs}: "
            f"job failed {medians[0]:.2f}s, replacement {medians[1]:.2f}s, "
            f"dead node pruned {medians[2]:.2f}s"
        )
    finally:
        for alias, name in created.items():
            connections[alias].creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
