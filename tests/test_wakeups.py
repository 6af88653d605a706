"""LISTEN/NOTIFY wake-ups on PostgreSQL, and polling when notifications are lost."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.tasks import TaskResultStatus

from dj_queue.models import Process
from dj_queue.runtime.wakeups import selectors_match
from tests.conftest import finished, options_env, wait_until
from tests.taskapp.tasks import add

ON_POSTGRESQL = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's"
)
# Polls so rare that a job started within the wait below was woken, not polled.
SLOW_POLLING = {"workers": [{"queues": ["*"], "threads": 2, "polling_interval": 60}]}


@pytest.mark.parametrize(
    ("selectors", "queue", "expected"),
    [
        (["*"], "anything", True),
        (["email"], "email", True),
        (["email"], "email_bulk", False),
        (["email*"], "email_bulk", True),
        (["reports", "email*"], "email", True),
        (["reports"], "email", False),
    ],
)
def test_selectors_match(selectors, queue, expected):
    assert selectors_match(selectors, queue) is expected


def listening(runtime) -> None:
    with connection.cursor() as cursor:
        wait_until(
            lambda: (
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %%'")
                or cursor.fetchone()[0] > 0
            ),
            message=runtime.log(),
        )
    # The worker's first poll happens at start; after it, only a wake-up helps.
    time.sleep(0.3)


@ON_POSTGRESQL
def test_enqueue_wakes_an_idle_worker_at_once(start_runtime):
    runtime = start_runtime(extra_env=options_env(**SLOW_POLLING))
    listening(runtime)

    result = add.enqueue(2, 3)

    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    assert result.return_value == 5
    assert runtime.stop() == 0


@ON_POSTGRESQL
def test_listener_reconnects_after_its_connection_is_killed(start_runtime):
    runtime = start_runtime(extra_env=options_env(**SLOW_POLLING))
    listening(runtime)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN %%'"
        )
        assert cursor.fetchone()[0] >= 1
    listening(runtime)  # connected again

    result = add.enqueue(1, 1)

    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    assert runtime.stop() == 0


@ON_POSTGRESQL
def test_promotion_wakes_workers(start_runtime):
    from datetime import timedelta

    from django.utils import timezone

    runtime = start_runtime(
        extra_env=options_env(
            **SLOW_POLLING, dispatchers=[{"batch_size": 10, "polling_interval": 0.1}]
        )
    )
    listening(runtime)

    result = add.using(run_after=timezone.now() + timedelta(seconds=0.5)).enqueue(1, 2)

    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    assert result.return_value == 3
    assert runtime.stop() == 0


def test_polling_finds_jobs_whose_notification_was_lost(start_runtime, settings):
    # The runtime listens; this process enqueues without notifying anyone.
    runtime = start_runtime(
        extra_env=options_env(workers=[{"queues": ["*"], "threads": 2, "polling_interval": 0.2}])
    )
    tasks = {**settings.TASKS}
    tasks["default"] = {
        **tasks["default"],
        "OPTIONS": {**tasks["default"]["OPTIONS"], "listen_notify": False},
    }
    settings.TASKS = tasks
    wait_until(lambda: Process.objects.filter(kind="worker").exists())

    result = add.enqueue(4, 4)

    wait_until(lambda: finished(result), timeout=10, message=runtime.log())
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert runtime.stop() == 0
