"""Recurring tasks end to end: real ``manage.py dj_queue`` runtimes firing
second-resolution schedules (croniter's sixth field), so nothing waits for a
minute boundary, except the one slow test that does."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.test import override_settings
from django.utils import timezone

from dj_queue.api import schedule_recurring_task, unschedule_recurring_task
from dj_queue.models import Job, Process, RecurringExecution, RecurringTask
from dj_queue.operations.recurring import sync_static_tasks
from dj_queue.recurring import RecurringDefinition
from tests.conftest import ROOT, options_env, tasks_setting, wait_until
from tests.invariants import assert_invariants

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "tests.taskapp.tasks.add"
EVERY_SECOND = "* * * * * *"
FAST_SCHEDULER = {"polling_interval": 0.2}


def recurring(**tasks) -> dict[str, str]:
    return options_env(recurring=tasks, scheduler=FAST_SCHEDULER)


def fired(key: str) -> list[RecurringExecution]:
    return list(RecurringExecution.objects.filter(task_key=key).order_by("run_at"))


def test_a_static_task_fires_at_each_scheduled_second(start_runtime):
    runtime = start_runtime(
        extra_env=recurring(tick={"task_path": ADD, "schedule": EVERY_SECOND, "args": [1, 1]})
    )

    slots = wait_until(lambda: len(fired("tick")) >= 3 and fired("tick"), message=runtime.log())

    times = [slot.run_at for slot in slots]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert all(gap >= timedelta(seconds=1) and gap.microseconds == 0 for gap in gaps), gaps
    assert all(slot.run_at.microsecond == 0 for slot in slots)
    jobs = Job.objects.filter(pk__in=[slot.job_id for slot in slots])
    assert {(job.task_path, tuple(job.args)) for job in jobs} == {(ADD, (1, 1))}
    wait_until(
        lambda: all(job.finished_at for job in Job.objects.filter(pk=slots[0].job_id)),
        message=runtime.log(),
    )
    assert RecurringTask.objects.get(key="tick").static
    assert runtime.stop() == 0
    assert_invariants()


@pytest.fixture
def dynamic_api():
    """The test process's own backend with dynamic tasks on, as the runtime's."""
    options = {"scheduler": {"dynamic_tasks_enabled": True, **FAST_SCHEDULER}}
    with override_settings(TASKS=tasks_setting(options=options)):
        yield


def test_dynamic_tasks_take_effect_without_a_restart(start_runtime, dynamic_api):
    runtime = start_runtime(
        extra_env=options_env(scheduler={"dynamic_tasks_enabled": True, **FAST_SCHEDULER})
    )

    scheduled_at = time.monotonic()
    schedule_recurring_task("dyn", ADD, EVERY_SECOND, args=[2, 2])
    wait_until(lambda: fired("dyn"), message=runtime.log())
    took = time.monotonic() - scheduled_at
    print(f"dynamic task first fired {took:.2f}s after schedule_recurring_task")
    assert took < 5, "picked up within the polling interval (and the next slot)"

    schedule_recurring_task("dyn", ADD, "* * * * * */2", args=[3, 3])
    changed = wait_until(
        lambda: [job for job in Job.objects.filter(task_path=ADD) if job.args == [3, 3]],
        message=runtime.log(),
    )
    slot = RecurringExecution.objects.get(job_id=changed[0].pk)
    assert slot.run_at.second % 2 == 0, "the new schedule fired, not the old"

    assert unschedule_recurring_task("dyn")
    time.sleep(1.5)  # a round that read the task just before it went may still fire
    count = len(fired("dyn"))
    time.sleep(2.5)
    assert len(fired("dyn")) == count, "no slot fired after the task was unscheduled"
    assert runtime.stop() == 0


def test_two_full_runtimes_fire_each_slot_exactly_once(start_runtime):
    keys = ("tick", "tock", "tack")  # three every-second tasks: many slots in a few seconds
    env = recurring(
        **{
            key: {"task_path": ADD, "schedule": EVERY_SECOND, "args": [n, n]}
            for n, key in enumerate(keys)
        }
    )
    first = start_runtime(extra_env=env)
    second = start_runtime(extra_env=env)
    wait_until(lambda: Process.objects.filter(kind="scheduler").count() == 2, message=second.log())

    wait_until(lambda: RecurringExecution.objects.count() >= 30, timeout=40, message=second.log())
    assert first.stop() == 0 and second.stop() == 0

    slots = list(RecurringExecution.objects.all())
    jobs = Job.objects.filter(task_path=ADD)  # only the recurring tasks make these
    per_slot = Counter((slot.task_key, slot.run_at) for slot in slots)
    print(f"two runtimes: {len(per_slot)} slots, {jobs.count() - len(per_slot)} duplicates")
    assert max(per_slot.values()) == 1
    assert jobs.count() == len(slots), "one job per slot, none beside the slot rows"
    assert {slot.job_id for slot in slots} == set(jobs.values_list("pk", flat=True))
    assert {job.args[0] for job in jobs} == {0, 1, 2}
    assert_invariants()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_skip_recurring_starts_no_scheduler_and_fires_nothing(start_runtime, how):
    env = recurring(tick={"task_path": ADD, "schedule": EVERY_SECOND})
    if how == "flag":
        runtime = start_runtime("--skip-recurring", extra_env=env)
    else:
        runtime = start_runtime(extra_env={**env, "DJ_QUEUE_SKIP_RECURRING": "1"})

    time.sleep(2.5)

    assert not RecurringExecution.objects.exists()
    assert not Process.objects.filter(kind="scheduler").exists()
    assert "scheduler: off" in runtime.log()
    assert runtime.stop() == 0


def test_after_downtime_only_the_latest_missed_slot_fires(start_runtime):
    # A yearly task whose scheduler was down for three years: on restart it
    # fires this year's slot once, not the three it missed.
    yearly = {"task_path": ADD, "schedule": "0 0 1 1 *", "args": [7, 7]}
    definition = RecurringDefinition(key="yearly", task_path=ADD, schedule="0 0 1 1 *", args=[7, 7])
    sync_static_tasks("default", [definition])
    three_years_ago = timezone.now() - timedelta(days=3 * 366)
    RecurringTask.objects.filter(key="yearly").update(
        last_run_at=three_years_ago, updated_at=three_years_ago
    )

    runtime = start_runtime(extra_env=recurring(yearly=yearly))

    slots = wait_until(lambda: fired("yearly"), message=runtime.log())
    runtime.wait_for_log("recurring task yearly fired")
    assert runtime.stop() == 0
    assert [slot.run_at for slot in fired("yearly")] == [
        datetime(timezone.now().year, 1, 1, tzinfo=UTC)
    ]
    assert slots[0].job_id is not None


def test_a_task_whose_code_is_gone_is_reported_and_the_scheduler_goes_on(start_runtime):
    env = recurring(tick={"task_path": ADD, "schedule": EVERY_SECOND})
    runtime = start_runtime(extra_env=env)
    wait_until(lambda: fired("tick"), message=runtime.log())
    # A row naming a task that no longer exists (written by an older release,
    # say) fails its firing, not the scheduler.
    now = timezone.now()
    RecurringTask.objects.create(
        key="ghost",
        task_path="tests.taskapp.tasks.removed_long_ago",
        schedule=EVERY_SECOND,
        static=True,
        created_at=now - timedelta(hours=1),
        updated_at=now - timedelta(hours=1),
    )

    RecurringTask.objects.create(
        key="garbled",
        task_path=ADD,
        schedule="every so often",
        static=True,
        created_at=now - timedelta(hours=1),
        updated_at=now - timedelta(hours=1),
    )

    runtime.wait_for_log("recurring task ghost could not fire")
    runtime.wait_for_log("recurring task garbled has a bad schedule")
    count = len(fired("tick"))
    wait_until(lambda: len(fired("tick")) > count, message=runtime.log())
    assert not fired("ghost") and not fired("garbled")
    assert runtime.log().count("garbled has a bad schedule") == 1, "reported once"
    assert runtime.stop() == 0


@pytest.mark.slow
def test_a_real_every_minute_cron_fires_on_the_minute(start_runtime):
    runtime = start_runtime(
        extra_env=recurring(minutely={"task_path": ADD, "schedule": "* * * * *"})
    )

    slots = wait_until(lambda: fired("minutely"), timeout=75, interval=0.5, message=runtime.log())

    assert slots[0].run_at.second == 0 and slots[0].run_at.microsecond == 0
    job = Job.objects.get(pk=slots[0].job_id)
    assert abs((job.enqueued_at - slots[0].run_at).total_seconds()) < 2
    assert runtime.stop() == 0


def test_a_recurring_task_that_cannot_run_refuses_the_start(runtime_env, tmp_path):
    config = tmp_path / "queue.yml"
    config.write_text(
        "recurring:\n  broken:\n    task_path: tests.taskapp.tasks.nope\n    schedule: '@hourly'\n"
    )
    finished = subprocess.run(
        [sys.executable, "-m", "django", "dj_queue", "--config", str(config)],
        cwd=ROOT,
        env=runtime_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "'broken': task_path" in finished.stderr
    assert not Process.objects.exists()
