"""Concurrent claimers and promoters, each on its own connection, never take a row twice."""

from __future__ import annotations

import threading
import time
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


def holders_by_key() -> dict[str, int]:
    """Jobs holding a slot (ready or claimed) per concurrency key, in one statement."""
    from django.db.models import Count, Exists, OuterRef

    holding = Exists(ReadyExecution.objects.filter(job_id=OuterRef("pk"))) | Exists(
        ClaimedExecution.objects.filter(job_id=OuterRef("pk"))
    )
    rows = (
        Job.objects.filter(holding, concurrency_key__isnull=False)
        .values("concurrency_key")
        .annotate(count=Count("pk"))
    )
    return {row["concurrency_key"]: row["count"] for row in rows}


def innodb_deadlocks() -> int | None:
    if connections["default"].vendor != "mysql":
        return None
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT `COUNT` FROM information_schema.INNODB_METRICS WHERE NAME = 'lock_deadlocks'"
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def test_enqueuers_and_finishers_racing_on_few_keys_never_exceed_the_limit():
    """Six threads each enqueue a limited job and finish one, over two keys of
    limit 2: the holders of a key never exceed 2, no blocked job is left behind
    with its key free, and on MariaDB no deadlock happens at all. Threads share
    worker processes three by three, as a worker's threads do."""
    from dj_queue.concurrency import ConcurrencyLimit
    from dj_queue.models import BlockedExecution, Semaphore
    from dj_queue.operations.jobs import complete_job
    from tests.taskapp.tasks import paired

    rounds, threads = 40, 6
    deadlocks_before = innodb_deadlocks()
    peaks: list[dict[str, int]] = []

    def finish_one(process_id: int) -> bool:
        jobs = claim_jobs(
            "default", process_id=process_id, worker_id="racer", selectors=["*"], limit=1
        )
        for job in jobs:
            limit = ConcurrencyLimit.of_job(job)
            assert complete_job("default", job.id, process_id, None, preserve=True, limit=limit)
        return bool(jobs)

    processes = [
        register_process("default", kind="worker", name=f"racer-{index}", backend_alias="default")
        for index in range(2)
    ]

    def racer(index: int) -> None:
        process = processes[index % 2]
        for n in range(rounds):
            paired.enqueue("ab"[n % 2], n)
            finish_one(process.id)
            peaks.append(holders_by_key())
        deadline = time.monotonic() + 60  # a job stuck blocked fails the test, not hangs it
        while finish_one(process.id) or BlockedExecution.objects.exists():
            assert time.monotonic() < deadline, "blocked jobs were never released"
            peaks.append(holders_by_key())

    run_threads(threads, racer)

    worst = max((count for peak in peaks for count in peak.values()), default=0)
    assert 1 <= worst <= 2, peaks
    assert not BlockedExecution.objects.exists()
    assert holders_by_key() == {}
    assert set(Semaphore.objects.values_list("key", "value")) == {("pair:a", 2), ("pair:b", 2)}
    assert assert_invariants() == {"finished": rounds * threads}
    if deadlocks_before is not None:
        assert innodb_deadlocks() == deadlocks_before, "MariaDB reported deadlocks"
