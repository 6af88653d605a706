"""A claim a live worker holds without knowing it (its commit's reply was lost)
is found after a database error and given back to its queue."""

from __future__ import annotations

import pytest
from django.db import connection

from dj_queue.models import Job, Process
from dj_queue.operations.claims import claim_jobs, held_claims
from dj_queue.runtime import claim_audit
from dj_queue.runtime.claim_audit import ClaimAudit
from tests.chaos.faults import kill_sessions
from tests.conftest import options_env, wait_until
from tests.invariants import state_of
from tests.taskapp.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)


def hidden_claim(process, queue: str = "hidden") -> str:
    """A job claimed for ``process`` behind its back, as a lost commit reply leaves it."""
    job_id = add.using(queue_name=queue).enqueue(1, 2).id
    claimed = claim_jobs(
        "default", process_id=process.id, worker_id=process.name, selectors=[queue], limit=1
    )
    assert [str(job.id) for job in claimed] == [job_id]
    return job_id


@pytest.fixture
def audit(worker_process, monkeypatch) -> ClaimAudit:
    monkeypatch.setattr(claim_audit, "CHECK_INTERVAL", 0.0)
    return ClaimAudit("default", worker_process.id, worker_process.name)


def test_nothing_is_checked_without_a_database_error(audit, worker_process):
    hidden_claim(worker_process)
    assert not audit.due


def test_a_claim_unknown_on_two_checks_is_given_back(audit, worker_process):
    job_id = hidden_claim(worker_process)
    audit.doubt()

    assert audit.check(set) == 0  # seen once: perhaps a claim an instant old
    assert audit.due
    assert audit.check(set) == 1

    assert state_of(job_id) == "ready"
    job = Job.objects.get(pk=job_id)
    assert (job.worker_ids, job.started_at) == ([], None)  # its attempt taken back
    assert not audit.due


def test_known_claims_are_left_alone(audit, worker_process):
    known = hidden_claim(worker_process)
    unknown = hidden_claim(worker_process)
    audit.doubt()

    audit.check(lambda: {Job.objects.get(pk=known).id})
    audit.check(lambda: {Job.objects.get(pk=known).id})

    assert (state_of(known), state_of(unknown)) == ("claimed", "ready")


def test_a_claim_that_becomes_known_before_the_second_check_is_kept(audit, worker_process):
    job_id = hidden_claim(worker_process)
    audit.doubt()
    audit.check(set)

    assert audit.check(lambda: {Job.objects.get(pk=job_id).id}) == 0
    assert state_of(job_id) == "claimed"
    assert not audit.due


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no sessions to kill")
def test_a_running_worker_gives_back_a_claim_hidden_from_it(start_runtime):
    runtime = start_runtime(
        "--mode", "async", extra_env=options_env(workers=[{"queues": ["default"], "threads": 2}])
    )
    worker = wait_until(lambda: Process.objects.filter(kind="worker").first())
    job_id = hidden_claim(worker)

    assert kill_sessions().count > 0  # the database error that puts claims in doubt

    # The worker does not serve "hidden": given back, the job stays ready there.
    wait_until(lambda: state_of(job_id) == "ready", timeout=30, message=runtime.log())
    assert held_claims("default", worker.id) == set()
    assert "gave back 1 job(s) it held without knowing" in runtime.log()
    assert runtime.stop() == 0
