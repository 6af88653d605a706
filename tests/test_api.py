"""dj_queue.api: QueueInfo and enqueue_on_commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.tasks import task_backends

from dj_queue.api import QueueInfo, enqueue_on_commit
from dj_queue.exceptions import InvalidPayload
from dj_queue.models import Job, ReadyExecution
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.queues import clear_queue
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add

pytestmark = pytest.mark.django_db


def enqueue_to(queue: str, count: int = 1) -> list[str]:
    return [add.using(queue_name=queue).enqueue(i, i).id for i in range(count)]


def age_ready_rows(queue: str, seconds: float) -> None:
    for row in ReadyExecution.objects.filter(queue_name=queue):
        row.created_at -= timedelta(seconds=seconds)
        row.save(update_fields=["created_at"])


def test_size_counts_ready_jobs_only(worker_process):
    enqueue_to("orders", 3)
    add.using(queue_name="orders", run_after=add_seconds(60)).enqueue(1, 1)
    enqueue_to("other", 2)
    claim_jobs(
        "default", process_id=worker_process.pk, worker_id="w", selectors=["orders"], limit=1
    )

    assert QueueInfo("orders").size == 2
    assert QueueInfo("other").size == 2
    assert QueueInfo("empty").size == 0


def add_seconds(seconds: float):
    from django.utils import timezone

    return timezone.now() + timedelta(seconds=seconds)


def test_latency_is_the_age_of_the_oldest_ready_job():
    assert QueueInfo("orders").latency == 0.0
    enqueue_to("orders", 2)
    age_ready_rows("orders", 30)

    assert 30 <= QueueInfo("orders").latency < 40


def test_pause_and_resume():
    orders = QueueInfo("orders")
    assert orders.paused is False

    assert orders.pause() is True
    assert orders.pause() is False  # already paused
    assert orders.paused is True
    assert QueueInfo("other").paused is False

    assert orders.resume() is True
    assert orders.resume() is False
    assert orders.paused is False


def test_enqueueing_into_a_paused_queue_still_works_and_latency_keeps_growing():
    orders = QueueInfo("orders")
    orders.pause()
    enqueue_to("orders", 2)
    age_ready_rows("orders", 10)

    assert orders.size == 2
    assert orders.latency >= 10


def test_paused_queue_is_never_claimed_from(worker_process):
    enqueue_to("orders", 2)
    enqueue_to("other", 1)
    QueueInfo("orders").pause()

    claimed = claim_jobs(
        "default", process_id=worker_process.pk, worker_id="w", selectors=["orders", "*"], limit=5
    )
    assert [job.queue_name for job in claimed] == ["other"]

    QueueInfo("orders").resume()
    claimed = claim_jobs(
        "default", process_id=worker_process.pk, worker_id="w", selectors=["*"], limit=5
    )
    assert [job.queue_name for job in claimed] == ["orders", "orders"]


def test_clear_discards_ready_jobs_of_that_queue_only(worker_process):
    orders = enqueue_to("orders", 6)
    claim_jobs(
        "default", process_id=worker_process.pk, worker_id="w", selectors=["orders"], limit=1
    )
    scheduled = add.using(queue_name="orders", run_after=add_seconds(60)).enqueue(1, 1)
    kept = enqueue_to("other", 2)

    # Batches smaller than the queue: every batch is its own transaction.
    assert clear_queue("default", "orders", batch_size=2) == 5

    assert state_of(orders[0]) == "claimed"  # the oldest was already running
    assert {state_of(job_id) for job_id in orders[1:]} == {"missing"}
    assert state_of(scheduled.id) == "scheduled"
    assert {state_of(job_id) for job_id in kept} == {"ready"}
    assert_invariants()


def test_queue_info_clear_returns_the_count():
    enqueue_to("orders", 3)
    assert QueueInfo("orders").clear() == 3
    assert Job.objects.count() == 0


def test_all_lists_queues_with_waiting_work_or_a_pause():
    enqueue_to("orders")
    add.using(queue_name="later", run_after=add_seconds(60)).enqueue(1, 1)
    QueueInfo("quiet").pause()

    assert [queue.name for queue in QueueInfo.all()] == ["later", "orders", "quiet"]
    figures = QueueInfo("orders").figures()
    assert figures["size"] == 1
    assert figures["paused"] is False


def test_queue_info_counts_blocked_jobs_apart_from_ready_ones():
    from tests.taskapp.tasks import sync_account

    for _ in range(3):
        sync_account.using(queue_name="accounts").enqueue(1)

    info = QueueInfo("accounts")
    assert (info.size, info.blocked) == (1, 2)
    assert info.figures()["blocked"] == 2
    assert [queue.name for queue in QueueInfo.all()] == ["accounts"]


def test_queue_info_for_a_non_dj_queue_backend_is_refused(settings):
    settings.TASKS = {
        **settings.TASKS,
        "plain": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},
    }
    with pytest.raises(TypeError, match="not a dj_queue backend"):
        QueueInfo("orders", backend="plain").size  # noqa: B018


@pytest.mark.django_db(databases=["default", "queue"])
def test_queue_info_uses_the_backends_database():
    add.using(backend="separate", queue_name="orders").enqueue(1, 1)
    assert QueueInfo("orders", backend="separate").size == 1
    assert QueueInfo("orders").size == 0


BOTH_DATABASES = pytest.mark.django_db(databases=["default", "queue"], transaction=True)


@BOTH_DATABASES
def test_enqueue_on_commit_enqueues_after_commit():
    with transaction.atomic():
        enqueue_on_commit(add, 3, 7)
        assert Job.objects.count() == 0
    [job] = Job.objects.all()
    assert (job.task_path, job.args) == (add.module_path, [3, 7])


@BOTH_DATABASES
def test_enqueue_on_commit_enqueues_nothing_on_rollback():
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(add, 3, 7)
        raise RuntimeError("the order failed")
    assert Job.objects.count() == 0


@BOTH_DATABASES
def test_enqueue_on_commit_outside_a_transaction_enqueues_at_once():
    enqueue_on_commit(add, 1, 2)
    assert Job.objects.count() == 1


@BOTH_DATABASES
def test_enqueue_on_commit_waits_for_the_callers_transaction_with_a_separate_queue_database():
    separate = add.using(backend="separate")
    queue_jobs = Job.objects.using("queue")
    with transaction.atomic():  # the caller's transaction, on "default"
        enqueue_on_commit(separate, 5, 5)
        assert queue_jobs.count() == 0
    assert queue_jobs.count() == 1
    assert Job.objects.using("default").count() == 0

    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(separate, 6, 6)
        raise RuntimeError("rolled back")
    assert queue_jobs.count() == 1


@BOTH_DATABASES
def test_enqueue_on_commit_rejects_bad_arguments_at_the_call():
    with pytest.raises(InvalidPayload), transaction.atomic():
        enqueue_on_commit(add, {1, 2}, 3)
    assert Job.objects.count() == 0


def test_backends_are_configured_for_both_databases():
    assert task_backends["separate"].database_alias == "queue"
