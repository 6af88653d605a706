"""The operator commands: dj_queue_health and dj_queue_prune."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dj_queue.db.clock import DatabaseNow
from dj_queue.models import Job, Process
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import JobError, complete_job, fail_job
from dj_queue.operations.processes import register_process
from tests.conftest import wait_until
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, echo

pytestmark = pytest.mark.django_db


def health(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("dj_queue_health", *args, stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def register(kind: str, *, age: float = 0.0, backend: str = "default") -> Process:
    process = register_process(
        "default", kind=kind, name=f"{kind}-{uuid.uuid4().hex[:8]}", backend_alias=backend
    )
    if age:
        Process.objects.filter(pk=process.pk).update(
            last_heartbeat_at=DatabaseNow() - timedelta(seconds=age)
        )
    return process


# -- health --------------------------------------------------------------------


def test_health_without_any_runtime_fails_with_a_reason():
    code, output = health()
    assert code == 1
    assert output.strip() == (
        "unhealthy: backend 'default': no supervisor has heartbeated within 5s "
        "(no supervisor is registered)"
    )


def test_health_with_a_supervisor_and_a_worker_is_ok():
    register("supervisor")
    register("worker")
    register("dispatcher")
    code, output = health()
    assert code == 0
    assert output.startswith("ok: backend 'default': live within 5s:")
    assert "1 worker" in output


def test_health_needs_a_worker():
    register("supervisor")
    register("dispatcher")
    code, output = health()
    assert code == 1
    assert "no worker has heartbeated within 5s (no worker is registered)" in output


def test_health_with_a_stale_heartbeat_fails():
    register("supervisor")
    register("worker", age=120)
    code, output = health("--max-age", "60")
    assert code == 1
    assert "no worker has heartbeated within 60s (the newest worker heartbeat is 12" in output


def test_health_max_age_decides_what_is_stale():
    register("supervisor", age=30)
    register("worker", age=30)
    assert health("--max-age", "10")[0] == 1
    assert health("--max-age", "60")[0] == 0


def test_health_counts_only_the_backends_own_processes():
    register("supervisor", backend="other")
    register("worker", backend="other")
    assert health()[0] == 1


def test_health_json_for_probes():
    register("supervisor")
    register("worker")
    code, output = health("--json")
    report = json.loads(output)
    assert code == 0
    assert report["healthy"] is True
    assert report["live"] == {"supervisor": 1, "worker": 1}
    assert report["max_age"] == 5


def test_health_refuses_a_bad_max_age():
    with pytest.raises(CommandError, match="--max-age takes a number above 0"):
        call_command("dj_queue_health", "--max-age", "-3")


def test_health_of_an_unknown_backend_is_an_error():
    with pytest.raises(CommandError, match="--backend 'nope'"):
        call_command("dj_queue_health", "--backend", "nope")


@pytest.mark.django_db(transaction=True)
def test_health_of_a_real_runtime(start_runtime):
    assert health()[0] == 1
    runtime = start_runtime()
    wait_until(lambda: health()[0] == 0, timeout=10)
    assert runtime.stop() == 0
    assert health()[0] == 1


# -- prune -------------------------------------------------------------------------


def prune(*args: str) -> str:
    out = StringIO()
    call_command("dj_queue_prune", *args, stdout=out)
    return out.getvalue().strip()


def finished_job(process, *, task=add, failed=False, age_days=2.0) -> str:
    result = task.enqueue(1, 2)
    claim_jobs("default", process_id=process.pk, worker_id="w", selectors=["*"], limit=1)
    job_id = uuid.UUID(result.id)
    if failed:
        fail_job("default", job_id, process.pk, JobError("builtins.ValueError", "x", "tb"))
    else:
        complete_job("default", job_id, process.pk, 3, preserve=True)
    Job.objects.filter(pk=job_id).update(finished_at=timezone.now() - timedelta(days=age_days))
    return result.id


DAY = str(24 * 3600)


def test_prune_deletes_old_successful_jobs_only(worker_process):
    old = [finished_job(worker_process) for _ in range(3)]
    recent = finished_job(worker_process, age_days=0.1)
    old_failed = finished_job(worker_process, failed=True)
    ready = add.enqueue(1, 1).id
    scheduled = add.using(run_after=timezone.now() + timedelta(days=9)).enqueue(1, 1).id
    running = add.enqueue(2, 2).id
    claim_jobs("default", process_id=worker_process.pk, worker_id="w", selectors=["*"], limit=2)

    assert prune("--older-than", DAY) == f"deleted 3 successful job(s) older than {DAY}s"

    assert {state_of(job_id) for job_id in old} == {"missing"}
    assert state_of(recent) == "finished"
    assert state_of(old_failed) == "failed"
    assert state_of(scheduled) == "scheduled"
    assert {state_of(ready), state_of(running)} == {"claimed"}
    assert_invariants()


def test_prune_include_failed_deletes_failed_jobs_too(worker_process):
    failed = finished_job(worker_process, failed=True)
    succeeded = finished_job(worker_process)

    assert "deleted 2 finished job(s)" in prune("--older-than", DAY, "--include-failed")

    assert state_of(failed) == state_of(succeeded) == "missing"
    assert_invariants()


def test_prune_by_task_path(worker_process):
    of_add = finished_job(worker_process)
    of_echo = finished_job(worker_process, task=echo)

    output = prune("--older-than", DAY, "--task-path", echo.module_path)

    assert output == f"deleted 1 successful job(s) of {echo.module_path} older than {DAY}s"
    assert state_of(of_add) == "finished"
    assert state_of(of_echo) == "missing"


def test_prune_in_small_batches_deletes_everything(worker_process):
    jobs = [finished_job(worker_process) for _ in range(7)]
    prune("--older-than", DAY, "--batch-size", "2")
    assert {state_of(job_id) for job_id in jobs} == {"missing"}


def test_prune_dry_run_deletes_nothing(worker_process):
    jobs = [finished_job(worker_process) for _ in range(2)]
    assert prune("--older-than", DAY, "--dry-run") == (
        f"would delete 2 successful job(s) older than {DAY}s"
    )
    assert {state_of(job_id) for job_id in jobs} == {"finished"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--older-than"),
        (["--older-than", "0"], "--older-than takes a number above 0"),
        (["--older-than", "soon"], "--older-than takes a number above 0"),
        (["--older-than", "60", "--batch-size", "2.5"], "--batch-size takes a whole number"),
    ],
)
def test_prune_refuses_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("dj_queue_prune", *args)
