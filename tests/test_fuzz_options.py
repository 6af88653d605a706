"""Property tests of options (README "Configuration").

Any ``OPTIONS`` mapping either parses or raises ``ConfigurationError`` whose
message names an option of that mapping; the backend's system check reports
it and never raises.

Every property runs against the configured database (DJ_QUEUE_TEST_DB). The
explicit tests after each property pin the bugs it found, now fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.checks import CheckMessage
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from dj_queue.backend import DjQueueBackend
from dj_queue.exceptions import ConfigurationError
from tests.fuzz_support import ANY_VALUES, fuzz

JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=6),
        st.binary(max_size=3),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=6,
)
UNKNOWN_KEYS = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.none(),
    st.booleans(),
    st.tuples(st.integers()),
    st.floats(allow_nan=False),
)


def options(known: dict[str, SearchStrategy[Any]]) -> SearchStrategy[dict[Any, Any]]:
    """Mappings of some of the ``known`` keys, sometimes with unknown keys too."""
    some_known = st.fixed_dictionaries({}, optional=known)
    unknown = st.dictionaries(UNKNOWN_KEYS, JUNK, min_size=1, max_size=2)
    return st.one_of(
        some_known, st.builds(lambda ours, theirs: {**theirs, **ours}, some_known, unknown)
    )


def value_or_junk(valid: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.one_of(valid, JUNK)


COUNTS = st.integers(min_value=1, max_value=64)
SECONDS = st.one_of(
    st.integers(min_value=1, max_value=10**6),
    st.floats(min_value=1e-3, max_value=1e6),
)
WRONG_SECONDS = st.one_of(
    st.integers(min_value=-3, max_value=0),
    st.floats(),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e308, True]),
)
FLAGS = st.booleans()
NAMES = st.one_of(st.sampled_from(["default", "queue", "nope"]), st.text(max_size=10))
QUEUE_SELECTORS = st.one_of(
    st.lists(st.sampled_from(["*", "email", "email*", "reports*"]), min_size=1, max_size=3),
    st.sampled_from(["*", "email"]),
)
WRONG_QUEUE_SELECTORS = st.one_of(
    st.just([]),
    st.lists(st.one_of(st.sampled_from(["*email", "e*mail", "**", "", " "]), st.integers())),
)
TIME_ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
WRONG_TIME_ZONES = st.one_of(
    st.sampled_from(["Mars/Olympus", "", " ", "/etc/passwd", "../UTC", "UTC\x00", "\ud800"]),
    st.text(max_size=20),
)
SCHEDULES = st.sampled_from(["* * * * *", "@hourly", "*/5 * * * *", "0 0 31 2 *", "0 9 * * 1-5"])
WRONG_SCHEDULES = st.one_of(
    st.sampled_from(["* * * *", "61 * * * *", "*/0 * * * *", "", "@never", "\x00", "x" * 300]),
    st.text(max_size=15),
)
TASK_PATHS = st.sampled_from(
    [
        "tests.taskapp.tasks.add",
        "tests.taskapp.tasks.echo",
        "tests.taskapp.tasks.send_email",
        "tests.taskapp.tasks.sync_account",
    ]
)
WRONG_TASK_PATHS = st.one_of(
    st.sampled_from(
        [
            "tests.taskapp.tasks.not_a_task",
            "tests.taskapp.tasks.MARKER",
            "tests.taskapp.no_such_module.add",
            "os.system",
            "antigravity.fly",
            "not_dotted",
            "",
        ]
    ),
    st.text(max_size=20),
)
PRIORITIES = st.integers(min_value=-100, max_value=100)
WRONG_PRIORITIES = st.one_of(st.integers(), st.booleans(), st.floats(), st.text(max_size=3))


def option_values(*, valid: bool) -> dict[str, SearchStrategy[Any]]:
    """Every option dj_queue knows (dj_queue/config.py), each with values that
    parse (``valid``) or with anything at all."""

    def pick(good: SearchStrategy[Any], bad: SearchStrategy[Any]) -> SearchStrategy[Any]:
        return good if valid else st.one_of(good, bad, JUNK)

    def mapping(known: dict[str, SearchStrategy[Any]]) -> SearchStrategy[dict[Any, Any]]:
        return st.fixed_dictionaries({}, optional=known) if valid else options(known)

    def list_of(item: SearchStrategy[Any]) -> SearchStrategy[Any]:
        if valid:
            return st.lists(item, max_size=2)
        # A single mapping stands for a list of one.
        return st.one_of(st.lists(st.one_of(item, JUNK), max_size=3), item)

    seconds = pick(SECONDS, WRONG_SECONDS)
    optional_seconds = pick(st.one_of(st.none(), SECONDS), WRONG_SECONDS)
    counts = pick(COUNTS, st.integers(max_value=0))
    flags = pick(FLAGS, st.sampled_from([0, 1, "true", "yes", None]))
    worker = mapping(
        {
            "queues": pick(QUEUE_SELECTORS, WRONG_QUEUE_SELECTORS),
            "threads": counts,
            "processes": counts,
            "polling_interval": seconds,
            "prefetch": pick(st.integers(0, 64), st.integers(max_value=-1)),
            "completion_window": pick(st.sampled_from([0, 0.005, 1]), WRONG_SECONDS),
        }
    )
    dispatcher = mapping(
        {
            "batch_size": counts,
            "polling_interval": seconds,
            "concurrency_maintenance": flags,
            "concurrency_maintenance_interval": seconds,
        }
    )
    recurring_task = st.fixed_dictionaries(
        {
            "task_path": pick(TASK_PATHS, WRONG_TASK_PATHS),
            "schedule": pick(SCHEDULES, WRONG_SCHEDULES),
        },
        optional={
            # Arguments of every kind: the system check validates them as an
            # enqueue would.
            "args": pick(st.lists(ANY_VALUES, max_size=2), JUNK),
            "kwargs": pick(st.dictionaries(st.text(max_size=4), ANY_VALUES, max_size=2), JUNK),
            "queue_name": pick(st.sampled_from(["default", "email", "*", "x" * 200]), JUNK),
            "priority": pick(PRIORITIES, WRONG_PRIORITIES),
            "description": pick(st.text(max_size=10), JUNK),
        },
    )
    return {
        "mode": pick(st.sampled_from(["fork", "async"]), st.sampled_from(["thread", "", "FORK"])),
        "workers": list_of(worker),
        "dispatchers": list_of(dispatcher),
        "scheduler": mapping(
            {
                "polling_interval": seconds,
                "dynamic_tasks_enabled": flags,
                "time_zone": pick(st.one_of(st.none(), TIME_ZONES), WRONG_TIME_ZONES),
            }
        ),
        "recurring": st.dictionaries(
            # Task keys: strings, or (not valid) any hashable value.
            st.text(min_size=1, max_size=10) if valid else UNKNOWN_KEYS,
            recurring_task,
            max_size=2,
        ),
        "retries": mapping(
            {
                "max_attempts": counts,
                "delay": pick(st.floats(0, 100), WRONG_SECONDS),
                "max_delay": pick(st.floats(0, 10_000), WRONG_SECONDS),
                "jitter": flags,
            }
        ),
        "timeout": optional_seconds,
        "database_alias": pick(st.sampled_from(["default", "queue"]), NAMES),
        "preserve_finished_jobs": flags,
        "clear_finished_jobs_after": optional_seconds,
        "use_skip_locked": flags,
        "listen_notify": flags,
        "silence_polling": flags,
        "sqlite_wal": flags,
        # Drawn apart: often the threshold is not the longer, which is an error.
        "process_heartbeat_interval": seconds,
        "process_alive_threshold": seconds,
        "shutdown_timeout": seconds,
        "on_thread_error": pick(st.sampled_from([None, "tests.taskapp.tasks.noop"]), NAMES),
    }


OPTION_MAPPINGS = st.one_of(
    st.fixed_dictionaries({}, optional=option_values(valid=True)),
    options(option_values(valid=False)),
)


def names_a_given_key(message: str, options_given: Mapping[Any, Any]) -> bool:
    # Errors name an option by its path (TASKS['default']['OPTIONS']['mode']),
    # unknown options by repr(str(key)); the heartbeat/threshold error names
    # both options in words.
    return any(
        f"[{key!r}]" in message
        or repr(str(key)) in message
        or (isinstance(key, str) and len(key) > 3 and key in message)
        for key in options_given
    )


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The backend also reads these; only the mapping under test may count.
    for name in ("DJ_QUEUE_CONFIG", "DJ_QUEUE_MODE", "DJ_QUEUE_SKIP_RECURRING"):
        monkeypatch.delenv(name, raising=False)


def fresh_backend(options_given: Any) -> DjQueueBackend:
    # Alias "default": recurring entries may then name the suite's tasks.
    return DjQueueBackend(
        "default", {"BACKEND": "dj_queue.backend.DjQueueBackend", "OPTIONS": options_given}
    )


@fuzz(150)
@given(options_given=OPTION_MAPPINGS)
@example(options_given={})
@example(options_given={"mode": "thread"})
@example(options_given={"workers": [{"queues": ["e*mail"]}]})
@example(options_given={"workers": {"threads": 0}})
@example(options_given={"process_heartbeat_interval": 600})
@example(options_given={"timeout": math.nan, "retries": {"delay": -1}})
@example(options_given={"scheduler": {"time_zone": "Mars/Olympus"}})
@example(options_given={"scheduler": {"time_zone": "/etc/passwd"}})
@example(options_given={"recurring": {"k": {"task_path": "os.system", "schedule": "@hourly"}}})
@example(
    options_given={
        "recurring": {
            "k": {"task_path": "tests.taskapp.tasks.add", "schedule": "* *", "args": [math.nan]}
        }
    }
)
@example(
    options_given={
        "recurring": {
            "k": {"task_path": "tests.taskapp.tasks.add", "schedule": "@daily", "args": [{1, 2}]}
        }
    }
)
@example(options_given={1: "one", None: [], (1,): {}})
def test_options_parse_or_raise_a_configuration_error_naming_a_given_key(
    clean_environment: None, options_given: dict[Any, Any]
) -> None:
    backend = fresh_backend(options_given)
    try:
        _ = backend.config
    except ConfigurationError as exc:
        assert names_a_given_key(str(exc), options_given), str(exc)
        problem: str | None = str(exc)
    else:
        problem = None
    # The system check (manage.py check) reports the problem instead of raising.
    messages = backend.check()
    assert all(isinstance(message, CheckMessage) for message in messages)
    if problem is not None:
        assert [(m.id, m.msg) for m in messages] == [("dj_queue.E001", problem)]


@pytest.mark.parametrize(
    "zone", ["Europe", "America", "a" * 300], ids=["Europe", "America", "long"]
)
def test_time_zone_that_is_no_zone_file_is_a_configuration_error(
    clean_environment: None, zone: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"\['scheduler'\]\['time_zone'\]"):
        _ = fresh_backend({"scheduler": {"time_zone": zone}}).config


@pytest.mark.parametrize(
    "options_given",
    [{"timeout": 10**400}, {"retries": {"delay": 10**400}}, {"retries": {"max_delay": -(10**400)}}],
    ids=["timeout", "delay", "max_delay"],
)
def test_integer_seconds_beyond_a_float_is_a_configuration_error(
    clean_environment: None, options_given: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        _ = fresh_backend(options_given).config


@pytest.mark.parametrize("options_given", ["fork", 5, ["mode"]], ids=repr)
def test_options_that_are_not_a_mapping_are_a_configuration_error(
    clean_environment: None, options_given: Any
) -> None:
    backend = fresh_backend(options_given)
    with pytest.raises(ConfigurationError, match=r"OPTIONS"):
        _ = backend.config
    assert [m.id for m in backend.check()] == ["dj_queue.E001"]
