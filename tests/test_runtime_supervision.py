"""Supervision end to end: modes, crashes, dead nodes, signals, outages, housekeeping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone

from dj_queue.db.clock import DatabaseNow
from dj_queue.models import ClaimedExecution, Job, Process
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.processes import register_process
from tests.chaos.faults import cannot_restart, kill_sessions, restart_database
from tests.conftest import ROOT, finished, options_env, wait_until
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, fail, sleep_for

pytestmark = pytest.mark.django_db(transaction=True)

VENDOR = connection.vendor


def claimed_by():
    claim = ClaimedExecution.objects.select_related("process").first()
    return claim.process if claim else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone as far as work goes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_each_mode_runs_jobs_and_stops_cleanly(start_runtime, mode):
    runtime = start_runtime("--mode", mode)
    results = [add.enqueue(i, i) for i in range(20)] + [fail.enqueue()]

    wait_until(lambda: all(finished(r) for r in results), message=runtime.log())

    assert [r.status for r in results[:-1]] == [TaskResultStatus.SUCCESSFUL] * 20
    assert results[-1].status == TaskResultStatus.FAILED
    assert runtime.stop() == 0
    assert not Process.objects.exists()
    assert_invariants()


def test_killed_worker_child_fails_its_job_and_is_replaced(start_runtime):
    runtime = start_runtime("--mode", "fork")
    result = sleep_for.enqueue(30)
    worker = wait_until(claimed_by, message=runtime.log())

    os.kill(worker.pid, signal.SIGKILL)

    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    assert result.status == TaskResultStatus.FAILED
    error = result.errors[-1]
    assert error.exception_class_path == "dj_queue.exceptions.ProcessExitError"
    assert "SIGKILL" in error.traceback
    replacement = wait_until(
        lambda: Process.objects.filter(kind="worker").exclude(pk=worker.pk).first(),
        timeout=10,
        message=runtime.log(),
    )
    assert replacement.pid != worker.pid
    assert not Process.objects.filter(pk=worker.pk).exists()

    later = add.enqueue(20, 22)
    wait_until(lambda: finished(later), message=runtime.log())
    assert later.return_value == 42
    assert runtime.stop() == 0
    assert_invariants()


def test_killed_dispatcher_child_is_replaced(start_runtime):
    runtime = start_runtime("--mode", "fork")
    dispatcher = wait_until(lambda: Process.objects.filter(kind="dispatcher").first())

    os.kill(dispatcher.pid, signal.SIGKILL)

    wait_until(
        lambda: Process.objects.filter(kind="dispatcher").exclude(pk=dispatcher.pk).exists(),
        timeout=10,
        message=runtime.log(),
    )
    scheduled = add.using(run_after=timezone.now() + timedelta(seconds=0.3)).enqueue(1, 2)
    wait_until(lambda: finished(scheduled), message=runtime.log())
    assert scheduled.return_value == 3
    assert runtime.stop() == 0


def test_dead_node_is_pruned_by_a_live_node_and_its_jobs_failed(start_runtime):
    dead = start_runtime("--only-work")
    result = sleep_for.enqueue(60)
    wait_until(claimed_by, message=dead.log())
    dead_pids = set(Process.objects.values_list("pid", flat=True))
    live = start_runtime("--only-dispatch")

    dead.kill_tree()

    # The settings' process_alive_threshold is 5s, heartbeats every 1s.
    wait_until(lambda: finished(result), timeout=20, message=live.log())
    assert result.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessPrunedError"
    assert not Process.objects.filter(pid__in=dead_pids).exists()
    assert Process.objects.filter(kind="dispatcher").exists()
    assert live.stop() == 0
    assert_invariants()


def test_process_left_from_before_boot_is_pruned_and_its_jobs_failed(start_runtime):
    ghost = register_process("default", kind="worker", name="ghost", backend_alias="default")
    job = add.enqueue(1, 1)
    claim_jobs("default", process_id=ghost.pk, worker_id="ghost", selectors=["*"], limit=1)
    Process.objects.filter(pk=ghost.pk).update(
        last_heartbeat_at=DatabaseNow() - timedelta(minutes=10)
    )

    runtime = start_runtime()

    wait_until(lambda: finished(job), message=runtime.log())
    assert job.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessPrunedError"
    assert runtime.stop() == 0


def test_sigquit_exits_at_once_and_leaves_claims_for_pruning(start_runtime):
    runtime = start_runtime("--mode", "fork")
    result = sleep_for.enqueue(30)
    wait_until(claimed_by, message=runtime.log())
    pids = set(Process.objects.values_list("pid", flat=True))

    started = time.monotonic()
    runtime.signal(signal.SIGQUIT)

    assert runtime.process.wait(5) != 0
    assert time.monotonic() - started < 5
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout=5)
    assert state_of(result.id) == "claimed"


def test_second_sigterm_during_shutdown_changes_nothing(start_runtime):
    runtime = start_runtime("--mode", "fork")
    result = sleep_for.enqueue(1.5)
    wait_until(claimed_by, message=runtime.log())

    runtime.signal(signal.SIGTERM)
    time.sleep(0.3)
    runtime.signal(signal.SIGTERM)

    assert runtime.stop() == 0
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite has no connections to drop")
@pytest.mark.parametrize("mode", ["fork", "async"])
def test_processing_resumes_after_connections_are_dropped(start_runtime, mode):
    runtime = start_runtime("--mode", mode)
    before = add.enqueue(1, 1)
    wait_until(lambda: finished(before), message=runtime.log())

    assert kill_sessions().count > 0

    after = add.enqueue(2, 2)
    scheduled = add.using(run_after=timezone.now() + timedelta(seconds=0.5)).enqueue(3, 3)
    wait_until(lambda: finished(after) and finished(scheduled), timeout=30, message=runtime.log())
    assert (after.return_value, scheduled.return_value) == (4, 6)
    assert runtime.process.poll() is None
    assert runtime.stop() == 0


@pytest.mark.skipif(cannot_restart() is not None, reason=str(cannot_restart()))
def test_processing_resumes_after_the_database_server_restarts(start_runtime):
    runtime = start_runtime()
    before = add.enqueue(1, 1)
    wait_until(lambda: finished(before), message=runtime.log())

    restart_database()  # this test's own connection died with the server: reconnects

    after = add.enqueue(2, 2)
    wait_until(lambda: finished(after), timeout=60, message=runtime.log())
    assert after.return_value == 4
    assert runtime.process.poll() is None
    assert runtime.stop() == 0


def test_scheduler_deletes_old_successful_jobs_and_keeps_failed_ones(start_runtime):
    runtime = start_runtime(
        extra_env=options_env(clear_finished_jobs_after=0.5, scheduler={"polling_interval": 0.2})
    )
    wait_until(lambda: Process.objects.filter(kind="scheduler").exists(), message=runtime.log())
    succeeded = add.enqueue(1, 1)
    failed = fail.enqueue()
    wait_until(lambda: finished(succeeded) and finished(failed), message=runtime.log())

    wait_until(lambda: not Job.objects.filter(pk=succeeded.id).exists(), timeout=10)
    assert Job.objects.filter(pk=failed.id).exists()
    assert runtime.stop() == 0


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--skip-recurring"], {}), ([], {"DJ_QUEUE_SKIP_RECURRING": "1"}), (["--only-work"], {})],
)
def test_no_scheduler_when_skipped(start_runtime, args, env):
    runtime = start_runtime(*args, extra_env={**options_env(clear_finished_jobs_after=60), **env})
    wait_until(lambda: Process.objects.filter(kind="worker").exists())
    time.sleep(0.5)
    assert not Process.objects.filter(kind="scheduler").exists()
    assert runtime.stop() == 0


def test_yaml_file_configures_the_runtime(start_runtime, tmp_path):
    config = tmp_path / "dj_queue.yml"
    config.write_text("mode: async\nworkers:\n  - queues: [email, default]\n    threads: 2\n")
    runtime = start_runtime("--config", str(config))

    worker = wait_until(lambda: Process.objects.filter(kind="worker").first())
    assert worker.metadata["queues"] == ["email", "default"]
    assert worker.metadata["threads"] == 2
    assert worker.pid == runtime.process.pid  # async: one process
    assert "mode async" in runtime.log()
    assert runtime.stop() == 0


def test_bad_yaml_file_refuses_to_start(runtime_env, tmp_path):
    config = tmp_path / "dj_queue.yml"
    config.write_text("workers:\n  - threads: many\n")
    completed = subprocess.run(
        [sys.executable, "-m", "django", "dj_queue"],
        cwd=ROOT,
        env={
            **runtime_env,
            "DJ_QUEUE_CONFIG": str(config),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert f"{config}, line 2" in completed.stderr
    assert "['threads']" in completed.stderr
    assert not Process.objects.exists()
