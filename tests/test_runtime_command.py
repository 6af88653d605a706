"""End to end: a real ``manage.py dj_queue`` subprocess against the test database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone

from dj_queue.models import ClaimedExecution, Process
from tests.conftest import ROOT, finished, options_env, wait_until
from tests.invariants import assert_invariants
from tests.taskapp.tasks import add, fail, sleep_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_quick_start_add_runs_to_success(start_runtime):
    runtime = start_runtime()
    result = add.enqueue(3, 7)

    wait_until(lambda: finished(result), message=runtime.log())

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 10
    assert result.attempts == 1
    assert runtime.stop() == 0
    assert_invariants()


def test_failing_task_ends_failed_with_its_traceback(start_runtime):
    runtime = start_runtime()
    result = fail.enqueue("card declined")

    wait_until(lambda: finished(result), message=runtime.log())

    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "builtins.ValueError"
    assert "card declined" in result.errors[0].traceback
    assert runtime.stop() == 0


def test_scheduled_job_waits_for_its_time_then_runs(start_runtime):
    runtime = start_runtime()
    run_after = timezone.now() + timedelta(seconds=1.5)
    result = add.using(run_after=run_after).enqueue(1, 2)

    wait_until(lambda: finished(result), message=runtime.log())

    assert result.return_value == 3
    assert result.started_at >= run_after
    assert runtime.stop() == 0


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_runtime_registers_its_processes_and_heartbeats(start_runtime, mode):
    runtime = start_runtime("--mode", mode)
    wait_until(lambda: Process.objects.filter(kind="dispatcher").exists())
    supervisor = Process.objects.get(kind="supervisor")
    children = Process.objects.filter(supervisor=supervisor)
    assert sorted(children.values_list("kind", flat=True)) == ["dispatcher", "worker"]
    assert supervisor.pid == runtime.process.pid
    child_pids = {child.pid for child in children}
    if mode == "async":
        assert child_pids == {runtime.process.pid}
    else:
        assert len(child_pids) == 2
        assert runtime.process.pid not in child_pids

    first_beat = supervisor.last_heartbeat_at
    wait_until(
        lambda: Process.objects.get(pk=supervisor.pk).last_heartbeat_at > first_beat,
        timeout=10,
    )

    assert runtime.stop() == 0
    assert not Process.objects.exists()


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_sigterm_lets_the_running_job_finish(start_runtime, mode):
    runtime = start_runtime("--mode", mode)
    result = sleep_for.enqueue(1.0)
    wait_until(lambda: ClaimedExecution.objects.exists(), message=runtime.log())

    runtime.signal(signal.SIGTERM)
    runtime.signal(signal.SIGTERM)  # a second TERM changes nothing

    code = runtime.stop()
    assert code == 0, runtime.log()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert not Process.objects.exists()
    assert_invariants()


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_sigterm_past_shutdown_timeout_fails_the_job_and_exits_nonzero(start_runtime, mode):
    runtime = start_runtime("--mode", mode, extra_env=options_env(shutdown_timeout=0.5))
    result = sleep_for.enqueue(30)
    wait_until(lambda: ClaimedExecution.objects.exists(), message=runtime.log())

    started = time.monotonic()
    assert runtime.stop() == 1
    assert time.monotonic() - started < 15

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessExitError"
    assert not ClaimedExecution.objects.exists()
    assert_invariants()


def test_worker_claims_no_more_jobs_than_it_has_threads(start_runtime):
    runtime = start_runtime(
        extra_env=options_env(workers=[{"queues": ["*"], "threads": 2, "polling_interval": 0.05}])
    )
    results = [sleep_for.enqueue(0.3) for _ in range(6)]

    most_claimed = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(finished(r) for r in results):
        most_claimed = max(most_claimed, ClaimedExecution.objects.count())
        time.sleep(0.02)

    assert all(r.status == TaskResultStatus.SUCCESSFUL for r in results), runtime.log()
    assert most_claimed == 2
    assert runtime.stop() == 0


def test_only_work_runs_no_dispatcher(start_runtime):
    runtime = start_runtime("--only-work")
    scheduled = add.using(run_after=timezone.now() + timedelta(seconds=0.2)).enqueue(1, 1)
    ready = add.enqueue(2, 2)

    wait_until(lambda: finished(ready), message=runtime.log())
    time.sleep(1.0)  # well past the scheduled time: nobody promotes it

    assert not Process.objects.filter(kind="dispatcher").exists()
    scheduled.refresh()
    assert scheduled.status == TaskResultStatus.READY
    assert runtime.stop() == 0


def test_only_dispatch_promotes_but_runs_nothing(start_runtime):
    runtime = start_runtime("--only-dispatch")
    scheduled = add.using(run_after=timezone.now() + timedelta(seconds=0.2)).enqueue(1, 1)

    from tests.invariants import state_of

    wait_until(lambda: state_of(scheduled.id) == "ready", message=runtime.log())
    assert not Process.objects.filter(kind="worker").exists()
    assert runtime.stop() == 0


def test_two_runtimes_share_the_queue_and_run_each_job_once(start_runtime):
    first = start_runtime()
    second = start_runtime("--only-work")
    results = add.get_backend().enqueue_all([(add, [i, i], {}) for i in range(200)])

    wait_until(lambda: all(finished(r) for r in results), timeout=60, message=first.log())

    assert [r.return_value for r in results] == [2 * i for i in range(200)]
    assert all(r.attempts == 1 for r in results)
    assert first.stop() == 0
    assert second.stop() == 0
    assert_invariants()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--backend", "nope"], {}, "--backend 'nope'"),
        ([], options_env(workers=[{"threads": 0}]), "['workers'][0]['threads']"),
        ([], options_env(colour="blue"), "unknown option(s) 'colour'"),
        (["--only-work", "--only-dispatch"], {}, "cannot be combined"),
    ],
)
def test_bad_configuration_refuses_to_start(runtime_env, args, env, expected):

    completed = subprocess.run(
        [sys.executable, "-m", "django", "dj_queue", *args],
        cwd=ROOT,
        env={
            **runtime_env,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert expected in completed.stderr
    assert not Process.objects.exists()


def test_running_worker_skips_a_paused_queue_and_resumed_work_flows(start_runtime):
    from dj_queue.api import QueueInfo

    orders = QueueInfo("orders")
    orders.pause()
    runtime = start_runtime()
    held = add.using(queue_name="orders").enqueue(1, 1)
    other = add.using(queue_name="other").enqueue(2, 2)

    wait_until(lambda: finished(other), message=runtime.log())
    time.sleep(0.5)  # ten polls of the worker
    held.refresh()
    assert held.status == TaskResultStatus.READY
    assert orders.size == 1

    orders.resume()
    wait_until(lambda: finished(held), message=runtime.log())
    assert held.return_value == 2
    assert orders.size == 0
    assert runtime.stop() == 0
