"""Unique jobs: declaring a key, duplicates at enqueue, and the key's release
when the job ends — checked through the database's unique index."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.tasks import task, task_backends
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from dj_queue.api import cancel_job
from dj_queue.models import Job
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import (
    JobError,
    complete_job,
    discard_failed_job,
    discard_waiting_jobs,
    fail_job,
)
from dj_queue.operations.processes import register_process
from tests.conftest import ROOT
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, digest_once, report_once, same_call, unique_flaky


def undecorated(report_id):
    return report_id


@pytest.mark.parametrize(
    ("attribute", "value", "fragment"),
    [
        ("unique_key", "r:{missing}", "unique_key 'r:{missing}' names 'missing'"),
        ("unique_key", "", "unique_key must be a non-empty string"),
        ("unique_for", 10, "unique_for only takes effect with a unique_key"),
    ],
)
def test_bad_declarations_fail_at_the_task_line(monkeypatch, attribute, value, fragment):
    monkeypatch.setattr(undecorated, attribute, value, raising=False)
    with pytest.raises(InvalidTask, match=f"undecorated: {fragment}"):
        task(undecorated)


def test_unique_for_must_be_positive(monkeypatch):
    monkeypatch.setattr(undecorated, "unique_key", True, raising=False)
    monkeypatch.setattr(undecorated, "unique_for", -1, raising=False)
    with pytest.raises(InvalidTask, match="unique_for must be a number of seconds above 0"):
        task(undecorated)


pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(db):
    return register_process("default", kind="worker", name="w", backend_alias="default")


def run_one(worker, outcome="success"):
    (job,) = claim_jobs("default", process_id=worker.pk, worker_id="w", selectors=("*",), limit=1)
    if outcome == "success":
        assert complete_job("default", job.id, worker.pk, "done", preserve=True)
    else:
        assert fail_job("default", job.id, worker.pk, JobError("builtins.ValueError", "x", "tb"))
    return job


def test_a_duplicate_returns_the_holder_and_writes_nothing():
    first = report_once.enqueue(7)
    again = report_once.enqueue(7, fmt="csv")  # the key names report_id only
    other = report_once.enqueue(8)
    assert again.id == first.id
    assert other.id != first.id
    assert Job.objects.count() == 2
    assert Job.objects.get(pk=first.id).unique_key == "report:7"
    assert_invariants()


def test_a_true_key_means_same_task_same_arguments():
    first = same_call.enqueue(1, y=2)
    assert same_call.enqueue(1, y=2).id == first.id
    assert same_call.enqueue(1, 2).id != first.id  # positional: another call
    assert same_call.enqueue(2, y=2).id != first.id
    assert Job.objects.count() == 3


def test_keys_compare_exactly():
    report_once.enqueue("A")
    report_once.enqueue("a")
    report_once.enqueue("a ")
    assert Job.objects.count() == 3


def test_enqueue_all_keeps_the_first_of_each_key():
    backend = task_backends["default"]
    results = backend.enqueue_all(
        [
            (report_once, [1], {}),
            (add, [1, 1], {}),
            (report_once, [1], {"fmt": "x"}),
            (report_once, [2], {}),
        ]
    )
    assert results[2].id == results[0].id
    assert len({r.id for r in results}) == 3
    assert Job.objects.count() == 3
    assert_invariants()


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_the_key_frees_when_the_job_ends(worker, outcome):
    first = report_once.enqueue(5)
    run_one(worker, outcome)
    assert Job.objects.get(pk=first.id).unique_key is None
    assert report_once.enqueue(5).id != first.id


def test_the_key_frees_when_the_job_is_cancelled_or_discarded(worker):
    failed = report_once.enqueue(3)
    run_one(worker, "failure")
    discard_failed_job(failed.id)
    assert report_once.enqueue(3).id != failed.id

    cancelled = report_once.enqueue(1)
    cancel_job(cancelled.id)
    assert report_once.enqueue(1).id != cancelled.id

    waiting = report_once.enqueue(2)
    assert discard_waiting_jobs([waiting.id]) == 1
    assert report_once.enqueue(2).id != waiting.id


def test_a_retry_keeps_the_key(worker):
    first = unique_flaky.enqueue("k")
    (job,) = claim_jobs("default", process_id=worker.pk, worker_id="w", selectors=("*",), limit=1)
    fail_job("default", job.id, worker.pk, JobError.from_exception(ValueError("x")))
    assert state_of(first.id) == "scheduled"
    assert unique_flaky.enqueue("k").id == first.id


def test_unique_for_holds_the_key_after_success_until_it_runs_out(worker):
    first = digest_once.enqueue("monday")
    run_one(worker, "success")
    assert digest_once.enqueue("monday").id == first.id  # finished, within 60 s
    Job.objects.filter(pk=first.id).update(unique_until=timezone.now() - timedelta(seconds=1))
    second = digest_once.enqueue("monday")
    assert second.id != first.id
    assert Job.objects.get(pk=first.id).unique_key is None
    assert_invariants()


CONCURRENT_SCRIPT = """
import os, time
from tests.taskapp.tasks import report_once
start = float(os.environ["START_AT"])
while time.time() < start:
    time.sleep(0.001)
ids = {report_once.enqueue(f"k{n}").id for n in range(50)}
print(len(ids))
"""


@pytest.mark.django_db(transaction=True, databases=["default", "queue"])
def test_eight_processes_enqueueing_the_same_fifty_keys_make_fifty_jobs(runtime_env):
    import time

    env = {**runtime_env, "START_AT": str(time.time() + 3)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "shell", "-c", CONCURRENT_SCRIPT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert out.strip().splitlines()[-1] == "50"
    assert Job.objects.count() == 50
    assert set(Job.objects.values_list("unique_key", flat=True)) == {
        f"report:k{n}" for n in range(50)
    }
    assert_invariants()


def test_the_admin_shows_the_unique_key(admin_client):
    from django.urls import reverse

    result = report_once.enqueue(42)
    page = admin_client.get(reverse("admin:dj_queue_job_change", args=[result.id]))
    assert page.status_code == 200
    assert "report:42" in page.content.decode()
