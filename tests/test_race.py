"""Concurrent claimers and promoters, each on its own connection, never take a row twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from dj_queue.ids import new_job_id
from dj_queue.models import ClaimedExecution, Job, ReadyExecution, ScheduledExecution
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import NewJob, enqueue_jobs
from dj_queue.operations.processes import register_process
from dj_queue.operations.scheduling import promote_due_jobs
from tests.invariants import assert_invariants
from tests.taskapp.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 500
BATCH = 100


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(index)`` on ``count`` threads started together; re-raise their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def main(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=main, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a thread is still running"
    assert not errors, errors


def test_concurrent_claimers_claim_every_job_exactly_once(backend):
    for start in range(0, JOBS, BATCH):
        backend.enqueue_all([(add, (i, i), {}) for i in range(start, start + BATCH)])
    limits = [10, 15, 20, 25]
    claimed: dict[int, list[str]] = {}
    processes: dict[int, int] = {}

    def claimer(index: int) -> None:
        process = register_process(
            "default", kind="worker", name=f"race-worker-{index}", backend_alias="default"
        )
        processes[index] = process.id
        taken: list[str] = claimed.setdefault(index, [])
        while True:
            jobs = claim_jobs(
                "default",
                process_id=process.id,
                worker_id=process.name,
                selectors=["*"],
                limit=limits[index],
            )
            taken.extend(str(job.id) for job in jobs)
            # An empty claim may only mean the other claimers hold the rest.
            if not jobs and not ReadyExecution.objects.exists():
                return

    run_threads(len(limits), claimer)

    all_claimed = [job_id for taken in claimed.values() for job_id in taken]
    assert len(all_claimed) == JOBS
    assert len(set(all_claimed)) == JOBS
    assert ClaimedExecution.objects.count() == JOBS
    for index, taken in claimed.items():
        rows = ClaimedExecution.objects.filter(process_id=processes[index])
        assert sorted(str(job_id) for job_id in rows.values_list("job_id", flat=True)) == sorted(
            taken
        )
    for job in Job.objects.all():
        assert len(job.worker_ids) == 1, job.worker_ids
    assert assert_invariants() == {"claimed": JOBS}


def test_concurrent_promoters_promote_every_job_exactly_once():
    now = timezone.now()
    for start in range(0, JOBS, BATCH):
        enqueue_jobs(
            "default",
            [
                NewJob(
                    id=new_job_id(),
                    backend_alias="default",
                    task_path="tests.taskapp.tasks.add",
                    queue_name="default",
                    priority=0,
                    args=[i, i],
                    kwargs={},
                    run_after=now - timedelta(seconds=i),
                )
                for i in range(start, start + BATCH)
            ],
            now - timedelta(hours=1),
        )
    assert ScheduledExecution.objects.count() == JOBS
    promoted: dict[int, int] = {}

    def promoter(index: int) -> None:
        promoted[index] = 0
        while True:
            count = promote_due_jobs("default", batch_size=20)
            promoted[index] += count
            if not count and not ScheduledExecution.objects.exists():
                return

    run_threads(2, promoter)

    assert sum(promoted.values()) == JOBS
    assert ReadyExecution.objects.count() == JOBS
    assert ReadyExecution.objects.values("job_id").distinct().count() == JOBS
    assert assert_invariants() == {"ready": JOBS}
