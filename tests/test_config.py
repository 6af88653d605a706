"""``TASKS[alias]['OPTIONS']`` parsing and the system checks built on it."""

from __future__ import annotations

import copy
import math

import pytest
from django.conf import settings
from django.core.checks import Error, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from dj_queue.config import (
    DispatcherConfig,
    QueueConfig,
    RecurringTaskConfig,
    SchedulerConfig,
    WorkerConfig,
    parse_options,
)
from dj_queue.exceptions import ConfigurationError

WHERE = "TASKS['default']['OPTIONS']"
BACKEND_PATH = "dj_queue.backend.DjQueueBackend"


def parse(options):
    return parse_options(options, WHERE)


# -- defaults and accepted values ---------------------------------------------


def test_empty_options_give_the_defaults():
    config = parse({})
    assert config == QueueConfig()
    assert config.mode == "fork"
    assert config.workers == (WorkerConfig(queues=("*",), threads=3, processes=1),)
    assert config.dispatchers == (DispatcherConfig(),)
    assert config.scheduler == SchedulerConfig()
    assert config.recurring == ()
    assert config.database_alias == "default"
    assert config.preserve_finished_jobs is True
    assert config.use_skip_locked is True
    assert config.process_alive_threshold > config.process_heartbeat_interval


def test_missing_options_give_the_defaults():
    assert parse(None) == QueueConfig()


def test_suite_options_are_parsed():
    config = parse(settings.TASKS["default"]["OPTIONS"])
    assert config.workers == (WorkerConfig(queues=("*",), threads=4, polling_interval=0.05),)
    assert config.dispatchers == (DispatcherConfig(batch_size=100, polling_interval=0.1),)
    assert config.process_heartbeat_interval == 1.0
    assert config.process_alive_threshold == 5.0


def test_a_single_worker_mapping_is_accepted_as_a_list_of_one():
    config = parse({"workers": {"queues": ["email", "reports*"], "threads": 2}})
    assert config.workers == (WorkerConfig(queues=("email", "reports*"), threads=2),)


def test_a_single_queue_name_is_accepted_as_a_list_of_one():
    assert parse({"workers": [{"queues": "email"}]}).workers[0].queues == ("email",)


def test_several_workers_keep_their_order():
    config = parse({"workers": [{"queues": ["a"]}, {"queues": ["b"], "threads": 7}]})
    assert [w.queues for w in config.workers] == [("a",), ("b",)]
    assert config.workers[1].threads == 7


def test_seconds_accept_integers_and_floats():
    config = parse({"workers": [{"polling_interval": 2}], "shutdown_timeout": 0.5})
    assert config.workers[0].polling_interval == 2.0
    assert isinstance(config.workers[0].polling_interval, float)
    assert config.shutdown_timeout == 0.5


def test_batching_options_take_zero_to_turn_off():
    default = parse({}).workers[0]
    assert (default.prefetch, default.completion_window) == (32, 0.005)
    config = parse({"workers": [{"prefetch": 0, "completion_window": 0}]})
    assert (config.workers[0].prefetch, config.workers[0].completion_window) == (0, 0.0)
    assert parse({"workers": [{"completion_window": 0.02}]}).workers[0].completion_window == 0.02


def test_recurring_tasks_are_parsed():
    config = parse(
        {
            "recurring": {
                "nightly": {
                    "task_path": "tests.taskapp.tasks.add",
                    "schedule": "0 3 * * *",
                    "args": [1, 2],
                    "kwargs": {"x": 1},
                    "queue_name": "maintenance",
                    "priority": -5,
                    "description": "Adds at night",
                }
            }
        }
    )
    assert config.recurring == (
        RecurringTaskConfig(
            key="nightly",
            task_path="tests.taskapp.tasks.add",
            schedule="0 3 * * *",
            args=(1, 2),
            kwargs={"x": 1},
            queue_name="maintenance",
            priority=-5,
            description="Adds at night",
        ),
    )


def test_clear_finished_jobs_after_may_be_disabled():
    assert parse({"clear_finished_jobs_after": None}).clear_finished_jobs_after is None


# -- rejected values ---------------------------------------------------------

W0 = "['workers'][0]"

BAD_OPTIONS = {
    "unknown-top-level-key": ({"wokers": []}, ""),
    "options-not-a-mapping": (["workers"], ""),
    "unknown-worker-key": ({"workers": [{"thread": 2}]}, W0),
    "worker-not-a-mapping": ({"workers": ["email"]}, W0),
    "workers-not-a-list": ({"workers": "email"}, "['workers']"),
    "threads-zero": ({"workers": [{"threads": 0}]}, f"{W0}['threads']"),
    "threads-negative": ({"workers": [{"threads": -1}]}, f"{W0}['threads']"),
    "threads-text": ({"workers": [{"threads": "x"}]}, f"{W0}['threads']"),
    "threads-bool": ({"workers": [{"threads": True}]}, f"{W0}['threads']"),
    "threads-float": ({"workers": [{"threads": 2.0}]}, f"{W0}['threads']"),
    "threads-on-second-worker": (
        {"workers": [{"threads": 2}, {"threads": 0}]},
        "['workers'][1]['threads']",
    ),
    "processes-zero": ({"workers": [{"processes": 0}]}, f"{W0}['processes']"),
    "prefetch-negative": ({"workers": [{"prefetch": -1}]}, f"{W0}['prefetch']"),
    "prefetch-float": ({"workers": [{"prefetch": 1.5}]}, f"{W0}['prefetch']"),
    "completion-window-negative": (
        {"workers": [{"completion_window": -0.01}]},
        f"{W0}['completion_window']",
    ),
    "completion-window-text": (
        {"workers": [{"completion_window": "5ms"}]},
        f"{W0}['completion_window']",
    ),
    "polling-interval-zero": ({"workers": [{"polling_interval": 0}]}, f"{W0}['polling_interval']"),
    "polling-interval-negative": (
        {"workers": [{"polling_interval": -1}]},
        f"{W0}['polling_interval']",
    ),
    "polling-interval-nan": (
        {"workers": [{"polling_interval": math.nan}]},
        f"{W0}['polling_interval']",
    ),
    "polling-interval-inf": (
        {"workers": [{"polling_interval": math.inf}]},
        f"{W0}['polling_interval']",
    ),
    "polling-interval-text": (
        {"workers": [{"polling_interval": "1"}]},
        f"{W0}['polling_interval']",
    ),
    "polling-interval-bool": (
        {"workers": [{"polling_interval": True}]},
        f"{W0}['polling_interval']",
    ),
    "queues-empty": ({"workers": [{"queues": []}]}, f"{W0}['queues']"),
    "queues-star-inside": ({"workers": [{"queues": "a*b"}]}, f"{W0}['queues'][0]"),
    "queues-leading-star": ({"workers": [{"queues": ["ok", "*mail"]}]}, f"{W0}['queues'][1]"),
    "queues-blank-name": ({"workers": [{"queues": ["  "]}]}, f"{W0}['queues'][0]"),
    "queues-not-text": ({"workers": [{"queues": [1]}]}, f"{W0}['queues'][0]"),
    "mode-thread": ({"mode": "thread"}, "['mode']"),
    "preserve-finished-jobs-text": (
        {"preserve_finished_jobs": "yes"},
        "['preserve_finished_jobs']",
    ),
    "preserve-finished-jobs-int": ({"preserve_finished_jobs": 1}, "['preserve_finished_jobs']"),
    "use-skip-locked-none": ({"use_skip_locked": None}, "['use_skip_locked']"),
    "database-alias-empty": ({"database_alias": ""}, "['database_alias']"),
    "database-alias-not-text": ({"database_alias": 0}, "['database_alias']"),
    "shutdown-timeout-zero": ({"shutdown_timeout": 0}, "['shutdown_timeout']"),
    "clear-finished-jobs-after-zero": (
        {"clear_finished_jobs_after": 0},
        "['clear_finished_jobs_after']",
    ),
    "alive-threshold-equal-to-heartbeat": (
        {"process_heartbeat_interval": 60, "process_alive_threshold": 60},
        "['process_alive_threshold']",
    ),
    "alive-threshold-below-heartbeat": (
        {"process_heartbeat_interval": 60, "process_alive_threshold": 30},
        "['process_alive_threshold']",
    ),
    "alive-threshold-below-default-heartbeat": (
        {"process_alive_threshold": 10},
        "['process_alive_threshold']",
    ),
    "unknown-dispatcher-key": ({"dispatchers": [{"batch": 1}]}, "['dispatchers'][0]"),
    "dispatcher-batch-size-zero": (
        {"dispatchers": [{"batch_size": 0}]},
        "['dispatchers'][0]['batch_size']",
    ),
    "dispatcher-maintenance-text": (
        {"dispatchers": [{"concurrency_maintenance": "no"}]},
        "['dispatchers'][0]['concurrency_maintenance']",
    ),
    "unknown-scheduler-key": ({"scheduler": {"interval": 1}}, "['scheduler']"),
    "scheduler-polling-interval-zero": (
        {"scheduler": {"polling_interval": 0}},
        "['scheduler']['polling_interval']",
    ),
    "recurring-not-a-mapping": ({"recurring": [{"task_path": "a.b"}]}, "['recurring']"),
    "recurring-missing-task-path": (
        {"recurring": {"nightly": {"schedule": "0 3 * * *"}}},
        "['recurring']['nightly']",
    ),
    "recurring-missing-schedule": (
        {"recurring": {"nightly": {"task_path": "tests.taskapp.tasks.add"}}},
        "['recurring']['nightly']",
    ),
    "recurring-unknown-key": (
        {"recurring": {"n": {"task_path": "a.b", "schedule": "* * * * *", "every": 1}}},
        "['recurring']['n']",
    ),
    "recurring-args-not-a-list": (
        {"recurring": {"n": {"task_path": "a.b", "schedule": "* * * * *", "args": "xy"}}},
        "['recurring']['n']['args']",
    ),
    "recurring-kwargs-int-key": (
        {"recurring": {"n": {"task_path": "a.b", "schedule": "* * * * *", "kwargs": {1: 2}}}},
        "['recurring']['n']['kwargs']",
    ),
    "recurring-priority-out-of-range": (
        {"recurring": {"n": {"task_path": "a.b", "schedule": "* * * * *", "priority": 101}}},
        "['recurring']['n']['priority']",
    ),
    "recurring-blank-key": (
        {"recurring": {"": {"task_path": "a.b", "schedule": "* * * * *"}}},
        "['recurring']['']",
    ),
}


@pytest.mark.parametrize("name", BAD_OPTIONS)
def test_bad_option_raises_configuration_error_naming_its_path(name):
    options, path = BAD_OPTIONS[name]
    with pytest.raises(ConfigurationError) as raised:
        parse(options)
    assert str(raised.value).startswith(f"{WHERE}{path}: ")


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"wokers": []}, "'wokers'"),
        ({"workers": [{"thread": 2}]}, "'thread'"),
        ({"recurring": {"nightly": {"schedule": "0 3 * * *"}}}, "'task_path'"),
        ({"recurring": {"nightly": {"task_path": "a.b"}}}, "'schedule'"),
    ],
)
def test_error_names_the_unknown_or_missing_key(options, word):
    with pytest.raises(ConfigurationError, match=word):
        parse(options)


def test_configuration_error_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured):
        parse({"mode": "thread"})


def test_number_of_seconds_too_large_for_a_float_raises_configuration_error():
    with pytest.raises(ConfigurationError, match=r"\['polling_interval'\]"):
        parse({"workers": [{"polling_interval": 10**400}]})


# -- system checks -------------------------------------------------------------


BOTH_DATABASES = pytest.mark.django_db(databases=["default", "queue"])


def tasks_with_options(**options) -> dict:
    tasks = copy.deepcopy(settings.TASKS)
    tasks["default"]["OPTIONS"] = {**tasks["default"]["OPTIONS"], **options}
    return tasks


def dj_queue_errors() -> list:
    # Django's model checks ask some database backends for their server version,
    # which is why these tests may use both databases.
    return [message for message in run_checks() if message.id.startswith("dj_queue.")]


@BOTH_DATABASES
def test_suite_settings_pass_the_checks():
    assert dj_queue_errors() == []


@BOTH_DATABASES
def test_check_reports_bad_options_as_e001():
    with override_settings(TASKS=tasks_with_options(workers=[{"threads": 0}])):
        [error] = dj_queue_errors()
    assert isinstance(error, Error)
    assert error.id == "dj_queue.E001"
    assert "TASKS['default']['OPTIONS']['workers'][0]['threads']" in error.msg


@BOTH_DATABASES
def test_check_reports_an_unknown_database_alias_as_e002():
    with override_settings(TASKS=tasks_with_options(database_alias="nowhere")):
        [error] = dj_queue_errors()
    assert isinstance(error, Error)
    assert error.id == "dj_queue.E002"
    assert "'nowhere'" in error.msg


@BOTH_DATABASES
def test_check_names_the_backend_alias_with_bad_options():
    tasks = copy.deepcopy(settings.TASKS)
    tasks["secondary"] = {"BACKEND": BACKEND_PATH, "OPTIONS": {"mode": "thread"}}
    with override_settings(TASKS=tasks):
        [error] = dj_queue_errors()
    assert error.id == "dj_queue.E001"
    assert "TASKS['secondary']['OPTIONS']['mode']" in error.msg


def test_metrics_options_are_parsed():
    config = parse({"metrics": {"token": "s3cret-token-of-20ch", "cache_seconds": 0}})

    assert config.metrics.token == "s3cret-token-of-20ch"
    assert config.metrics.cache_seconds == 0.0
    assert parse({}).metrics.token is None
    assert "s3cret" not in repr(config.metrics)  # kept out of logs and tracebacks


@pytest.mark.parametrize(
    ("metrics", "named"),
    [
        ({"token": "short"}, "['metrics']['token']"),
        ({"token": " padded-token-of-twenty "}, "['metrics']['token']"),
        ({"token": 12345678901234567}, "['metrics']['token']"),
        ({"cache_seconds": -1}, "['metrics']['cache_seconds']"),
        ({"cache": 5}, "'cache'"),
        ("token", "['metrics']"),
    ],
)
def test_bad_metrics_options_are_refused_by_name(metrics, named):
    with pytest.raises(ConfigurationError) as error:
        parse({"metrics": metrics})

    assert named in str(error.value)
