"""dj_queue.reads: the figures the dashboard and the metrics share, against
the tables' truth; the finished-jobs tally on every path that ends a job, and
its merging."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from dj_queue import reads
from dj_queue.db.tallies import minute_of
from dj_queue.models import FailedExecution, FinishedTally, Job, ReadyExecution
from dj_queue.operations.claims import Claimant, claim_jobs, complete_and_claim_next
from dj_queue.operations.jobs import (
    JobError,
    complete_job,
    discard_failed_group,
    fail_job,
    retry_failed_group,
)
from dj_queue.operations.outcomes import Failure, Success, record_outcomes
from dj_queue.operations.processes import register_process
from dj_queue.operations.queues import pause_queue
from dj_queue.operations.tallies import WINDOW, compact_tallies
from dj_queue.reads.queues import bounded_counts
from tests.taskapp.tasks import add, sync_account

pytestmark = pytest.mark.django_db


def enqueue(queue: str, count: int, **options) -> list[uuid.UUID]:
    return [
        uuid.UUID(add.using(queue_name=queue, **options).enqueue(n, n).id) for n in range(count)
    ]


def claim(process, queue: str, limit: int):
    return claim_jobs(
        "default", process_id=process.id, worker_id="w", selectors=[queue], limit=limit
    )


def error(message: str = "boom") -> JobError:
    return JobError.from_exception(ValueError(message))


def by_name(snapshot) -> dict:
    return {queue.name: queue for queue in snapshot.queues}


def tallied(status: str) -> int:
    total = FinishedTally.objects.filter(status=status).aggregate(n=Sum("count"))["n"]
    return int(total or 0)


def test_queue_figures_match_the_tables(worker_process):
    enqueue("orders", 5)
    enqueue("orders", 2, run_after=timezone.now() + timedelta(hours=1))
    enqueue("mail", 3)
    for _ in range(3):  # one account, limit 1: one ready, two blocked
        sync_account.using(queue_name="accounts").enqueue(7)
    running = claim(worker_process, "orders", 2)
    failing = claim(worker_process, "mail", 1)[0]
    fail_job("default", failing.id, worker_process.id, error())
    pause_queue("default", "idle")

    queues = by_name(reads.snapshot("default"))

    assert sorted(queues) == ["accounts", "idle", "mail", "orders"]
    orders = queues["orders"]
    assert (orders.ready.value, orders.scheduled.value, orders.running.value) == (3, 2, 2)
    assert (orders.blocked.value, orders.failed.value, orders.paused) == (0, 0, False)
    mail = queues["mail"]
    assert (mail.ready.value, mail.running.value, mail.failed.value) == (2, 0, 1)
    accounts = queues["accounts"]
    assert (accounts.ready.value, accounts.blocked.value) == (1, 2)
    assert queues["idle"].paused and queues["idle"].ready.value == 0
    assert not any(count.capped for q in queues.values() for count in (q.ready, q.failed))
    assert {job.id for job in running} <= {
        job_id for process in reads.snapshot("default").processes for job_id in process.held_job_ids
    }


def test_counts_stop_at_the_cap():
    enqueue("big", 7)
    enqueue("small", 2)

    counts = bounded_counts("default", ReadyExecution, ["big", "small", "none"], cap=5)

    assert counts["big"] == reads.BoundedCount(5, capped=True)
    assert counts["big"].label == "5+"
    assert counts["small"] == reads.BoundedCount(2) and counts["small"].label == "2"
    assert counts["none"].value == 0
    assert reads.BoundedCount(10_000, capped=True).label == "10,000+"


def test_queue_names_differing_in_case_are_never_hidden():
    enqueue("Reports", 2)
    enqueue("reports", 1)

    queues = by_name(reads.snapshot("default"))

    if connection.vendor == "mysql":
        # The column's collation folds case: one listed name counts both.
        assert [queues[name].ready.value for name in queues] == [3]
    else:
        assert (queues["Reports"].ready.value, queues["reports"].ready.value) == (2, 1)


def test_latency_is_the_wait_of_the_oldest_ready_job():
    enqueue("slow", 2)
    oldest = ReadyExecution.objects.filter(queue_name="slow").order_by("pk").first()
    oldest.created_at -= timedelta(seconds=90)
    oldest.save(update_fields=["created_at"])
    enqueue("fresh", 1)

    queues = by_name(reads.snapshot("default"))

    assert 90 <= queues["slow"].latency < 120
    assert queues["fresh"].latency < 30


def test_processes_show_what_they_hold(worker_process):
    enqueue("orders", 3)
    held = claim(worker_process, "orders", 2)
    register_process("default", kind="dispatcher", name="d-1", backend_alias="default")
    register_process("default", kind="worker", name="elsewhere", backend_alias="other")

    snapshot = reads.snapshot("default")
    processes = {process.name: process for process in snapshot.processes}

    assert set(processes) == {worker_process.name, "d-1"}
    worker = processes[worker_process.name]
    assert worker.held.value == 2 and set(worker.held_job_ids) == {job.id for job in held}
    assert worker.heartbeat_age < 60 and worker.pid == worker_process.pid
    assert processes["d-1"].held.value == 0
    assert snapshot.process_counts() == {
        "supervisor": 0,
        "worker": 1,
        "dispatcher": 1,
        "scheduler": 0,
    }


def test_every_path_that_ends_a_job_tallies_it(worker_process):
    claimant = Claimant(process_id=worker_process.id, worker_id="w", selectors=("*",))
    enqueue("a", 9)
    jobs = claim(worker_process, "a", 9)
    # One at a time, then with the next claim, then in batches, then failures.
    assert complete_job("default", jobs[0].id, worker_process.id, 1, preserve=True)
    assert complete_job("default", jobs[1].id, worker_process.id, 1, preserve=False)
    complete_and_claim_next("default", claimant, job_id=jobs[2].id, return_value=1, preserve=True)
    record_outcomes("default", claimant, [Success(job.id, 1) for job in jobs[3:5]], preserve=True)
    record_outcomes(
        "default",
        claimant,
        [Success(jobs[5].id, 1)],
        [Failure(jobs[6].id, error())],
        preserve=False,
    )
    fail_job("default", jobs[7].id, worker_process.id, error())
    # A claim that is gone counts nothing.
    assert not complete_job("default", jobs[0].id, worker_process.id, 1, preserve=True)

    assert tallied("succeeded") == 6
    assert tallied("failed") == 2
    totals = {
        (t.queue_name, t.status): t.count for t in reads.finished_totals("default", "default")
    }
    assert totals == {("a", "succeeded"): 6, ("a", "failed"): 2}
    assert reads.finished_totals("default", "other") == ()


def test_throughput_has_every_minute_of_the_hour():
    now = timezone.now()
    for minutes_ago, status, count in [
        (0, "succeeded", 4),
        (0, "failed", 1),
        (59, "succeeded", 2),
        (60, "succeeded", 100),
    ]:
        FinishedTally.objects.create(
            backend_alias="default",
            queue_name="a",
            status=status,
            minute=minute_of(now - timedelta(minutes=minutes_ago)),
            count=count,
        )

    minutes = reads.throughput("default", "default", now=now)

    assert len(minutes) == 60
    assert minutes[-1].start == minute_of(now)
    assert (minutes[-1].succeeded, minutes[-1].failed) == (4, 1)
    assert minutes[0].succeeded == 2  # 60 minutes ago is outside the hour
    assert sum(minute.succeeded for minute in minutes) == 6


def test_merging_keeps_every_sum():
    now = timezone.now()
    current = minute_of(now)
    rows = [
        (current, 5),  # the current minute: left alone
        (current, 1),
        (current - timedelta(minutes=1), 2),  # an ended minute: merged
        (current - timedelta(minutes=1), 3),
        (current - timedelta(minutes=1), 4),
        (current - WINDOW - timedelta(minutes=5), 10),  # old: into the NULL row
        (current - WINDOW - timedelta(minutes=9), 20),
        (None, 100),
    ]
    for minute, count in rows:
        FinishedTally.objects.create(
            backend_alias="default", queue_name="a", status="succeeded", minute=minute, count=count
        )
    FinishedTally.objects.create(
        backend_alias="other", queue_name="a", status="succeeded", minute=None, count=7
    )

    removed = compact_tallies("default", "default", now=now)
    left = sorted(
        FinishedTally.objects.filter(backend_alias="default").values_list("minute", "count"),
        key=lambda row: (row[0] is not None, row[0] or current, row[1]),
    )

    assert removed == 4
    assert left == [
        (None, 130),
        (current - timedelta(minutes=1), 9),
        (current, 1),
        (current, 5),
    ]
    assert compact_tallies("default", "default", now=now) == 0
    assert FinishedTally.objects.get(backend_alias="other").count == 7


def test_failure_groups_and_acting_on_a_group(worker_process):
    enqueue("a", 5)
    jobs = claim(worker_process, "a", 5)
    for job in jobs[:3]:
        fail_job("default", job.id, worker_process.id, error("first"))
    fail_job("default", jobs[3].id, worker_process.id, JobError.from_exception(KeyError("k")))

    groups, sampled = reads.failure_groups("default")

    assert sampled == 4
    counts = {(g.task_path, g.exception_class): g.count for g in groups}
    task_path = jobs[0].task_path
    assert counts == {(task_path, "builtins.ValueError"): 3, (task_path, "builtins.KeyError"): 1}
    assert FailedExecution.objects.filter(queue_name="a").count() == 4

    assert retry_failed_group(task_path, "builtins.ValueError", using="default", batch_size=2) == 3
    assert ReadyExecution.objects.filter(job_id__in=[job.id for job in jobs[:3]]).count() == 3
    assert discard_failed_group(task_path, "builtins.KeyError", using="default") == 1
    assert not Job.objects.filter(pk=jobs[3].id).exists()
    assert reads.failure_groups("default") == ((), 0)


def test_a_queue_whose_every_job_runs_is_listed(worker_process):
    enqueue("busy", 2)
    claim(worker_process, "busy", 2)

    queues = by_name(reads.snapshot("default"))

    assert queues["busy"].running == reads.BoundedCount(2)
    assert queues["busy"].ready.value == 0


def test_a_drained_queue_reads_zero(worker_process):
    enqueue("drained", 1)
    job = claim(worker_process, "drained", 1)[0]
    complete_job("default", job.id, worker_process.id, 1, preserve=False)

    drained = by_name(reads.snapshot("default"))["drained"]

    assert (drained.ready.value, drained.running.value, drained.failed.value) == (0, 0, 0)


def test_merging_reaches_every_bucket_that_needs_it():
    now = timezone.now()
    ended = minute_of(now) - timedelta(minutes=3)
    for queue in ("a", "b", "c"):
        FinishedTally.objects.create(  # merged already: left as it is
            backend_alias="default",
            queue_name=queue,
            status="failed",
            minute=ended - timedelta(minutes=1),
            count=9,
        )
        for count in (1, 2, 3):
            FinishedTally.objects.create(
                backend_alias="default",
                queue_name=queue,
                status="failed",
                minute=ended,
                count=count,
            )

    assert compact_tallies("default", "default", now=now) == 6

    rows = FinishedTally.objects.order_by("queue_name", "minute").values_list("queue_name", "count")
    assert list(rows) == [("a", 9), ("a", 6), ("b", 9), ("b", 6), ("c", 9), ("c", 6)]
