"""Recurring tasks without a runtime: schedules, validation, syncing the static
tasks, the dynamic API and firing a slot once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.checks import Error
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone

from dj_queue.api import schedule_recurring_task, unschedule_recurring_task
from dj_queue.config import parse_options
from dj_queue.cron import Schedule, check_schedule, due_slot
from dj_queue.exceptions import ConfigurationError, InvalidRecurringTask
from dj_queue.models import Job, ReadyExecution, RecurringExecution, RecurringTask
from dj_queue.operations.jobs import delete_finished_jobs
from dj_queue.operations.recurring import (
    delete_stale_executions,
    fire,
    save_dynamic_task,
    sync_static_tasks,
)
from dj_queue.recurring import RecurringDefinition, validate_definition
from tests.conftest import tasks_setting
from tests.taskapp.tasks import add

pytestmark = pytest.mark.django_db

UTC_ZONE = ZoneInfo("UTC")
ADD = "tests.taskapp.tasks.add"


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


# -- schedules -------------------------------------------------------------------


def test_latest_slot_counts_a_time_exactly_on_the_schedule():
    every_minute = Schedule("* * * * *", UTC_ZONE)
    assert every_minute.latest(at(2026, 12, 1, 12, 0, 0)) == at(2026, 12, 1, 12, 0)
    assert every_minute.latest(at(2026, 12, 1, 12, 0, 59)) == at(2026, 12, 1, 12, 0)
    assert every_minute.following(at(2026, 12, 1, 12, 0, 0)) == at(2026, 12, 1, 12, 1)


def test_seconds_field_and_aliases():
    assert Schedule("* * * * * */5", UTC_ZONE).latest(at(2026, 1, 1, 0, 0, 7)) == at(
        2026, 1, 1, 0, 0, 5
    )
    assert Schedule("@hourly", UTC_ZONE).following(at(2026, 1, 1, 0, 30)) == at(2026, 1, 1, 1)
    assert check_schedule("@daily", "x") == "@daily"


def test_cron_times_are_read_in_the_schedules_zone_across_dst():
    paris = ZoneInfo("Europe/Paris")
    daily_9 = Schedule("0 9 * * *", paris)
    # 9:00 in Paris is 8:00 UTC in winter and 7:00 UTC in summer.
    assert daily_9.following(at(2026, 3, 28, 12)) == datetime(2026, 3, 29, 9, tzinfo=paris)
    assert daily_9.following(at(2026, 3, 28, 12)).astimezone(UTC) == at(2026, 3, 29, 7)
    assert daily_9.following(at(2026, 3, 27, 12)).astimezone(UTC) == at(2026, 3, 28, 8)


def test_after_downtime_only_the_latest_missed_slot_is_due():
    hourly = Schedule("0 * * * *", UTC_ZONE)
    created = at(2026, 1, 1)
    fired = at(2026, 1, 1, 10)

    # Down from 10:30 to 13:30: 11:00, 12:00 and 13:00 were missed; 13:00 fires.
    assert due_slot(hourly, at(2026, 1, 1, 13, 30), last_run_at=fired, changed_at=created) == at(
        2026, 1, 1, 13
    )
    assert due_slot(hourly, at(2026, 1, 1, 10, 30), last_run_at=fired, changed_at=created) is None


def test_a_slot_before_the_task_was_created_or_changed_never_fires():
    daily = Schedule("0 0 * * *", UTC_ZONE)
    created = at(2026, 1, 1, 10)
    assert due_slot(daily, at(2026, 1, 1, 11), last_run_at=None, changed_at=created) is None
    assert due_slot(daily, at(2026, 1, 2, 0, 1), last_run_at=None, changed_at=created) == at(
        2026, 1, 2
    )


# -- validation ------------------------------------------------------------------


def validate(**overrides):
    fields = {"key": "tick", "task_path": ADD, "schedule": "* * * * *", "args": [1, 2]}
    fields.update(overrides)
    return validate_definition(
        task_backends["default"],
        fields.pop("key"),
        fields.pop("task_path"),
        fields.pop("schedule"),
        **fields,
    )


def test_a_valid_definition_is_normalised():
    definition = validate(args=(1, 2), kwargs={}, queue_name="ops", priority=5)
    assert definition == RecurringDefinition(
        key="tick", task_path=ADD, schedule="* * * * *", args=[1, 2], queue_name="ops", priority=5
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schedule": "61 * * * *"}, r"'tick': schedule: '61 \* \* \* \*' is not a cron"),
        ({"schedule": ""}, r"'tick': schedule: expected a cron expression"),
        ({"task_path": "tests.taskapp.tasks.nope"}, r"'tick': task_path: .*does not name"),
        ({"task_path": "tests.taskapp.tasks.not_a_task"}, r"'tick': task_path: .*function"),
        (
            {"task_path": "not_an_installed_app.tasks.run"},
            r"'tick': task_path: .*outside every installed app",
        ),
        ({"args": [{1: 2}]}, r"'tick': args\[0\]: key 1 is of type int"),
        ({"args": "12"}, r"'tick': args must be a list"),
        (
            {"kwargs": {"x": {1, 2}}},
            r"'tick': kwargs\['x'\]: a value of type set is not a JSON value",
        ),
        ({"priority": 101}, r"'tick': priority: .*priority"),
        ({"priority": "high"}, r"'tick': priority must be a whole number"),
        ({"key": ""}, r"the key must be a non-empty string"),
        ({"key": "k" * 256}, r"the key must be a non-empty string of at most 255"),
        (
            {"task_path": "tests.taskapp.tasks.sync_account", "args": []},
            r"'tick': args/kwargs: .*signature",
        ),
    ],
)
def test_bad_definitions_name_the_key_and_the_field(overrides, message):
    with pytest.raises(InvalidRecurringTask, match=message):
        validate(**overrides)


def test_a_queue_the_backend_refuses_is_an_error():
    refused = pytest.raises(InvalidRecurringTask, match=r"'tick': queue_name: .*reports")
    with override_settings(TASKS=tasks_setting(QUEUES=["default"])), refused:
        validate(queue_name="reports")


def test_a_task_of_another_backend_is_an_error():
    with pytest.raises(InvalidRecurringTask, match=r"task of backend 'default', not 'separate'"):
        validate_definition(task_backends["separate"], "tick", ADD, "* * * * *")


def test_bad_schedules_and_zones_fail_when_options_are_parsed():
    where = "TASKS['default']['OPTIONS']"
    with pytest.raises(ConfigurationError, match=r"\['recurring'\]\['n'\]\['schedule'\]"):
        parse_options({"recurring": {"n": {"task_path": ADD, "schedule": "* *"}}}, where)
    with pytest.raises(ConfigurationError, match=r"\['scheduler'\]\['time_zone'\]"):
        parse_options({"scheduler": {"time_zone": "Mars/Olympus"}}, where)


def test_the_system_check_validates_static_recurring_tasks():
    recurring = {"tick": {"task_path": "tests.taskapp.tasks.missing", "schedule": "* * * * *"}}
    with override_settings(TASKS=tasks_setting(options={"recurring": recurring})):
        errors = task_backends["default"].check()
    assert [error.id for error in errors if isinstance(error, Error)] == ["dj_queue.E004"]
    assert "'tick': task_path" in errors[0].msg


# -- syncing static tasks ----------------------------------------------------------


def test_sync_adds_changes_and_removes_static_rows_and_keeps_dynamic_ones():
    save_dynamic_task("default", validate(key="dynamic"))
    sync_static_tasks("default", [validate(key="a"), validate(key="b")])
    kept = RecurringTask.objects.get(key="a").updated_at

    report = sync_static_tasks("default", [validate(key="a"), validate(key="c", priority=3)])

    assert (report.added, report.changed, report.removed) == (1, 0, 1)
    assert set(RecurringTask.objects.values_list("key", "static")) == {
        ("a", True),
        ("c", True),
        ("dynamic", False),
    }
    assert RecurringTask.objects.get(key="a").updated_at == kept, "unchanged rows keep history"
    report = sync_static_tasks("default", [validate(key="a", schedule="0 * * * *")])
    assert (report.added, report.changed, report.removed) == (0, 1, 1)
    assert RecurringTask.objects.get(key="a").schedule == "0 * * * *"


# -- the dynamic API ------------------------------------------------------------------


def test_the_api_needs_dynamic_tasks_enabled():
    with pytest.raises(ConfigurationError, match=r"\['scheduler'\]\['dynamic_tasks_enabled'\]"):
        schedule_recurring_task("report", ADD, "0 * * * *")
    with pytest.raises(ConfigurationError, match="dynamic_tasks_enabled"):
        unschedule_recurring_task("report")
    assert not RecurringTask.objects.exists()


@pytest.fixture
def dynamic_enabled():
    options = {"scheduler": {"dynamic_tasks_enabled": True, "polling_interval": 1}}
    with override_settings(TASKS=tasks_setting(options=options)):
        yield


def test_schedule_creates_then_updates_and_unschedule_removes(dynamic_enabled):
    assert schedule_recurring_task("report", ADD, "0 * * * *", args=[1, 2], priority=5)
    assert not schedule_recurring_task("report", add, "0 */2 * * *", args=[3, 4])

    row = RecurringTask.objects.get(key="report")
    assert (row.schedule, row.args, row.priority, row.static) == (
        "0 */2 * * *",
        [3, 4],
        None,
        False,
    )
    assert unschedule_recurring_task("report") is True
    assert unschedule_recurring_task("report") is False


def test_a_static_key_cannot_be_changed_or_removed_dynamically(dynamic_enabled):
    sync_static_tasks("default", [validate(key="nightly")])

    with pytest.raises(InvalidRecurringTask, match="'nightly' is static"):
        schedule_recurring_task("nightly", ADD, "0 3 * * *")
    with pytest.raises(InvalidRecurringTask, match="'nightly' is static"):
        unschedule_recurring_task("nightly")
    assert RecurringTask.objects.get(key="nightly").schedule == "* * * * *"


def test_a_rejected_dynamic_task_writes_nothing(dynamic_enabled):
    with pytest.raises(InvalidRecurringTask, match="'bad': schedule"):
        schedule_recurring_task("bad", ADD, "every minute")
    assert not RecurringTask.objects.exists()


# -- firing -----------------------------------------------------------------------------


def test_a_slot_fires_once_and_records_its_job():
    sync_static_tasks("default", [validate(key="tick", queue_name="ops", priority=7)])
    slot = timezone.now().replace(microsecond=0)

    job_id = fire("default", "default", "tick", slot)

    assert job_id is not None
    assert fire("default", "default", "tick", slot) is None
    assert fire("default", "default", "tick", slot - timedelta(minutes=1)) is None
    job = Job.objects.get(pk=job_id)
    assert (job.task_path, job.args, job.queue_name, job.priority) == (ADD, [1, 2], "ops", 7)
    execution = RecurringExecution.objects.get()
    assert (execution.task_key, execution.run_at, str(execution.job_id)) == ("tick", slot, job_id)
    assert RecurringTask.objects.get(key="tick").last_run_at == slot


def test_a_slot_row_left_from_before_is_a_quiet_no_op():
    sync_static_tasks("default", [validate(key="tick")])
    slot = timezone.now().replace(microsecond=0)
    RecurringExecution.objects.create(task_key="tick", run_at=slot, created_at=timezone.now())

    assert fire("default", "default", "tick", slot) is None
    assert not Job.objects.exists()


def test_firing_a_task_that_is_gone_does_nothing():
    assert fire("default", "default", "gone", timezone.now()) is None


def test_pruning_finished_jobs_takes_their_slot_rows_along():
    sync_static_tasks("default", [validate(key="tick")])
    slot = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    job_id = fire("default", "default", "tick", slot)
    ReadyExecution.objects.filter(job_id=job_id).delete()  # it ran and finished
    Job.objects.filter(pk=job_id).update(finished_at=timezone.now() - timedelta(hours=1))
    orphan = RecurringExecution.objects.create(
        task_key="tick", run_at=slot - timedelta(hours=1), created_at=timezone.now()
    )

    assert delete_finished_jobs("default", finished_before=timezone.now()) == 1
    assert list(RecurringExecution.objects.all()) == [orphan]
    assert delete_stale_executions("default", before=timezone.now()) == 1
    assert not RecurringExecution.objects.exists()
    # The slot cannot fire again: the task remembers it.
    assert fire("default", "default", "tick", slot) is None
