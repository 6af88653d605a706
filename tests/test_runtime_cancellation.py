"""Cancelling running jobs end to end: the request goes through the database
from another process; the worker holding the claim stops the job."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.tasks import TaskResultStatus

from dj_queue.models import Process
from tests.conftest import ROOT, finished, wait_until
from tests.invariants import assert_invariants
from tests.taskapp.tasks import add, long_running, long_sleep
from tests.test_runtime_supervision import alive

pytestmark = pytest.mark.django_db(transaction=True)

CANCELLED = "dj_queue.exceptions.JobCancelledError"


def cancel_from_another_process(runtime_env, job_id: str) -> str:
    """``cancel_job`` run by a separate ``manage.py shell``, as an operator would."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "shell",
            "-c",
            f"from dj_queue.api import cancel_job; print(cancel_job({job_id!r}))",
        ],
        cwd=ROOT,
        env=runtime_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def running(result) -> bool:
    result.refresh()
    return result.status == TaskResultStatus.RUNNING


@pytest.mark.parametrize("mode", ["fork", "async"])
def test_a_running_job_cancelled_from_another_process_stops(start_runtime, runtime_env, mode):
    runtime = start_runtime("--mode", mode)
    workers_before = set(Process.objects.filter(kind="worker").values_list("pk", flat=True))
    result = long_running.enqueue(60)
    wait_until(lambda: running(result), message=runtime.log())

    asked = time.monotonic()
    assert cancel_from_another_process(runtime_env, result.id) == "True"
    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    stopped_in = time.monotonic() - asked

    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == CANCELLED
    assert result.attempts == 1  # max_attempts 3, yet never retried
    assert stopped_in < 5
    later = add.enqueue(4, 5)
    wait_until(lambda: finished(later), timeout=20, message=runtime.log())
    assert later.return_value == 9
    workers_after = set(Process.objects.filter(kind="worker").values_list("pk", flat=True))
    if mode == "fork":
        assert workers_after and not workers_after & workers_before
    else:
        assert workers_after == workers_before
        assert "stopped after its cancel" in runtime.log()
    assert cancel_from_another_process(runtime_env, result.id) == "False"
    assert runtime.stop() == 0
    assert_invariants()


def test_code_blocked_in_c_is_failed_at_once_and_its_worker_replaced(start_runtime, runtime_env):
    runtime = start_runtime("--mode", "fork")
    result = long_sleep.enqueue(60)
    wait_until(lambda: running(result), message=runtime.log())
    worker = Process.objects.get(kind="worker")

    assert cancel_from_another_process(runtime_env, result.id) == "True"
    wait_until(lambda: finished(result), timeout=10, message=runtime.log())

    assert result.errors[-1].exception_class_path == CANCELLED
    # The retired worker waits for nothing but its stuck thread, which dies with it.
    wait_until(
        lambda: not Process.objects.filter(pk=worker.pk).exists(), timeout=15, message=runtime.log()
    )
    wait_until(lambda: Process.objects.filter(kind="worker").exists(), timeout=15)
    assert not alive(worker.pid)
    assert runtime.stop() == 0
