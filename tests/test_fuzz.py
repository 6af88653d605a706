"""Property tests: what dj_queue promises when it is handed bad input.

1. Arguments (README "Data contract"): ``enqueue()`` with any Python values
   either stores them so that ``get_result()`` hands back equal JSON (tuples as
   lists, UTF-8 bytes as text, types kept: ``1.0`` stays a float, ``True`` a
   bool), or raises ``InvalidPayload`` naming where the value sits and writes
   no row at all. A batch (``enqueue_all``) is stored whole or not at all.
2. Options (README "Configuration"): any ``OPTIONS`` mapping either parses or
   raises ``ConfigurationError`` whose message names an option of that
   mapping; the backend's system check reports it and never raises.
3. Result ids: ``get_result()`` of any string that is not a job's id raises
   ``TaskResultDoesNotExist``, on every database.
4. Hostile rows (README "Which code a worker runs"): a job row written by hand
   with any task path or any JSON the database accepts is settled by the
   worker's execution path (``execute_job``): the job ends failed with an error
   naming the reason, nothing outside the installed apps' packages is
   imported, nothing the path names is called, and the worker never raises.

Every property runs against the configured database (DJ_QUEUE_TEST_DB). The
explicit tests after each property pin the bugs it found, now fixed. DJ_QUEUE_FUZZ_SCALE
multiplies every property's number of examples for a longer local run.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.checks import CheckMessage
from django.db import DatabaseError, connection, transaction
from django.db.models import JSONField, Value
from django.tasks import Task
from django.tasks.exceptions import TaskResultDoesNotExist
from django.test import override_settings
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from dj_queue.backend import DjQueueBackend
from dj_queue.exceptions import ConfigurationError, InvalidPayload
from dj_queue.models import FailedExecution, Job, ReadyExecution, ScheduledExecution
from dj_queue.models.constraints import TASK_PATH_MAX_LENGTH
from dj_queue.operations.claims import claim_jobs
from dj_queue.runtime.execution import ExecutionContext, execute_job
from dj_queue.tasks_registry import resolve_task
from tests.conftest import tasks_setting
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, echo, fail

SCALE = float(os.environ.get("DJ_QUEUE_FUZZ_SCALE", "1"))
NOT_RESOLVABLE = "dj_queue.exceptions.TaskNotResolvable"
INVALID_PAYLOAD = "dj_queue.exceptions.InvalidPayload"


def fuzz(max_examples: int) -> settings:
    # database=None: no .hypothesis directory in the repository. Each test's
    # fixtures (its database transaction included) are shared by its examples,
    # which is what HealthCheck.function_scoped_fixture warns about.
    return settings(
        max_examples=max(1, round(max_examples * SCALE)),
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


def nest(value: Any, depth: int) -> Any:
    """``value`` inside ``depth`` containers, dicts and lists by turns."""
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def same_json(expected: Any, actual: Any, where: str) -> None:
    """Equal, and of the same JSON type all the way down (1.0 is not 1)."""
    assert type(actual) is type(expected), f"{where}: got {actual!r}, expected {expected!r}"
    if isinstance(expected, dict):
        # Equal as dicts are: PostgreSQL's jsonb keeps keys in an order of its own.
        assert actual.keys() == expected.keys(), f"{where}: keys {list(actual)!r}"
        for key in expected:
            same_json(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {len(actual)} items"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            same_json(want, got, f"{where}[{index}]")
    else:
        # -0.0 == 0.0: PostgreSQL's numeric has no negative zero, and the
        # contract only promises equality.
        assert actual == expected, f"{where}: got {actual!r}, expected {expected!r}"


# == 1. arguments ==============================================================

# README: "structures nested more than 31 levels deep (MariaDB's limit)"; the
# args list and the kwargs dict are the outermost level.
MAX_NESTING = 31


class Rejected(Exception):
    """The data contract says enqueue() must refuse this value."""


def stored_text(text: str) -> str:
    if "\x00" in text:
        raise Rejected("NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("lone surrogate") from None
    return text


def stored_float(number: float) -> float:
    if not math.isfinite(number):
        raise Rejected("not a JSON number")
    # PostgreSQL's jsonb keeps the decimal digits and writes them back without
    # an exponent (1e20 -> 100000000000000000000, an int): whatever would not
    # come back as this very float is refused on every database.
    returned = json.loads(format(Decimal(repr(number)), "f"))
    if type(returned) is not float or returned != number:
        raise Rejected("changed by jsonb")
    return number


def as_stored(value: Any, enclosing: int) -> Any:
    """What ``get_result()`` must hand back for ``value``, which sits inside
    ``enclosing`` lists or dicts; Rejected if enqueue() must refuse it."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            str(value)
        except ValueError:
            # Longer than sys.get_int_max_str_digits(): JSON cannot write it.
            raise Rejected("integer too long for JSON") from None
        return value
    if isinstance(value, float):
        return stored_float(value)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("bytes that are not UTF-8") from None
    if isinstance(value, str):
        return stored_text(value)
    if isinstance(value, list | tuple | dict):
        if enclosing + 1 > MAX_NESTING:
            raise Rejected("nested too deep")
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise Rejected("non-string key")
            return {stored_text(key): as_stored(item, enclosing + 1) for key, item in value.items()}
        return [as_stored(item, enclosing + 1) for item in value]
    raise Rejected(f"{type(value).__name__} is not JSON")


def expected_call(args: list[Any], kwargs: Mapping[Any, Any]) -> tuple[list, dict] | None:
    """The stored (args, kwargs) of a call, or None when it must be rejected."""
    try:
        return as_stored(list(args), 0), as_stored(dict(kwargs), 0)
    except Rejected:
        return None


def written_rows() -> tuple[int, int, int]:
    return Job.objects.count(), ReadyExecution.objects.count(), ScheduledExecution.objects.count()


# Text of every kind: NUL, lone surrogates, astral and control characters.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
HOSTILE_TEXT = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\u2028", "😀", "", " "])
BIG_INTEGERS = st.sampled_from(
    [2**63 - 1, 2**63, -(2**63) - 1, 2**64 + 1, 10**40, 10**4299, -(10**4299)]
)
NOTABLE_FLOATS = st.sampled_from(
    [0.1, -0.0, 5e-324, 2.0, 1e15, 1e16, 1e20, 1e-7, 1.2345678901234567e19, 1.7976931348623157e308]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    BIG_INTEGERS,
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
    st.text(max_size=12),
    st.text(max_size=6).map(str.encode),
)
ANY_SCALARS = st.one_of(
    JSON_SCALARS,
    st.floats(),  # NaN, infinities, and floats jsonb would change
    NOTABLE_FLOATS,
    ANY_TEXT,
    HOSTILE_TEXT,
    st.binary(max_size=6),
)
NOT_JSON = st.one_of(
    st.sets(st.integers(), max_size=2),
    st.frozensets(st.text(max_size=2), max_size=2),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.decimals(allow_nan=False, places=2),
    st.complex_numbers(max_magnitude=10),
    st.uuids(),
    st.builds(object),
    st.just(Ellipsis),
)
# Keys JSON has no room for: a JSON object's keys are strings.
NON_STRING_KEYS = st.one_of(
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.tuples(st.integers()),
    st.binary(max_size=3),
)


def json_containers(children: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    )


def any_containers(children: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.one_of(
        json_containers(children),
        st.dictionaries(ANY_TEXT, children, max_size=3),
        st.dictionaries(NON_STRING_KEYS, children, min_size=1, max_size=2),
    )


def deeply_nested(leaves: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.builds(nest, leaves, st.integers(min_value=26, max_value=40))


# Values that must round-trip (but for nesting and jsonb-changed floats,
# which the model decides), and values of every kind mixed.
JSON_VALUES = st.recursive(JSON_SCALARS, json_containers, max_leaves=12)
ANY_VALUES = st.one_of(
    st.recursive(st.one_of(ANY_SCALARS, NOT_JSON), any_containers, max_leaves=12),
    deeply_nested(ANY_SCALARS),
)


def calls(values: SearchStrategy[Any]) -> SearchStrategy[tuple[list[Any], dict[str, Any]]]:
    # Keyword names can be any str in **kwargs, NUL and surrogates included,
    # but "self": Django's Task.enqueue(self, *args, **kwargs) takes that one.
    names = st.one_of(st.text(max_size=8), ANY_TEXT, HOSTILE_TEXT).filter(
        lambda name: name != "self"
    )
    return st.tuples(st.lists(values, max_size=3), st.dictionaries(names, values, max_size=3))


CALLS = st.one_of(calls(JSON_VALUES), calls(ANY_VALUES))

CYCLIC_LIST: list[Any] = []
CYCLIC_LIST.append(CYCLIC_LIST)
CYCLIC_DICT: dict[str, Any] = {}
CYCLIC_DICT["self"] = CYCLIC_DICT


@fuzz(150)
@given(call=CALLS)
@example(call=([math.nan, math.inf], {}))
@example(call=([{1: "one"}], {}))
@example(call=([{True: "yes"}, {None: 0}], {}))
@example(call=(["a\x00b"], {}))
@example(call=([], {"key\x00": 1}))
@example(call=(["\ud800"], {}))
@example(call=([], {"\udc00": 1}))
@example(call=([b"\xff\xfe"], {}))
@example(call=(["héllo".encode()], {"b": b"\x00"}))
@example(call=([{1, 2}, frozenset()], {}))
@example(call=([datetime(2030, 1, 1, tzinfo=UTC)], {"d": Decimal("1.5")}))
@example(call=([object()], {}))
@example(call=([1e20, 1e16, -1e22], {}))
@example(call=([(1, (2, "three"))], {"t": ()}))
@example(call=([True, 1, 1.0, -0.0, 5e-324], {"": None}))
@example(call=([10**4299, -(10**4299)], {}))
@example(call=([nest("bottom", 29)], {"k": nest(1, 30)}))
@example(call=([nest("bottom", 30)], {}))
@example(call=([CYCLIC_LIST], {}))
@example(call=([], {"loop": CYCLIC_DICT}))
@example(call=(["x" * 200_000], {}))
@example(call=([list(range(10_000))], {}))
def test_enqueue_stores_json_unchanged_or_rejects_and_writes_nothing(
    db: None, backend: DjQueueBackend, call: tuple[list[Any], dict[str, Any]]
) -> None:
    args, kwargs = call
    expected = expected_call(args, kwargs)
    before = written_rows()
    try:
        result = echo.enqueue(*args, **kwargs)
    except InvalidPayload as exc:
        assert written_rows() == before, "a rejected enqueue wrote rows"
        assert expected is None, f"arguments the contract accepts were rejected: {exc}"
        assert str(exc).startswith(("args", "kwargs")), f"names no argument: {exc}"
        return
    assert expected is not None, "enqueue() accepted arguments the contract rejects"
    expected_args, expected_kwargs = expected
    same_json(expected_args, result.args, "enqueue().args")
    same_json(expected_kwargs, result.kwargs, "enqueue().kwargs")
    fetched = backend.get_result(result.id)
    same_json(expected_args, fetched.args, "get_result().args")
    same_json(expected_kwargs, fetched.kwargs, "get_result().kwargs")
    assert fetched == result


@fuzz(60)
@given(
    batch=st.lists(
        st.tuples(
            st.lists(st.one_of(JSON_VALUES, ANY_VALUES), max_size=2),
            # enqueue_all() takes any mapping as kwargs: non-string keys too.
            st.dictionaries(
                st.one_of(st.text(max_size=4), NON_STRING_KEYS), JSON_VALUES, max_size=2
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
@example(batch=[([1], {}), ([], {"x": math.inf})])
@example(batch=[([1], {}), ([], {1: "one"})])
def test_a_batch_is_stored_whole_or_rejected_whole(
    db: None, backend: DjQueueBackend, batch: list[tuple[list[Any], dict[Any, Any]]]
) -> None:
    expected = [expected_call(args, kwargs) for args, kwargs in batch]
    before = written_rows()
    try:
        results = backend.enqueue_all([(echo, args, kwargs) for args, kwargs in batch])
    except InvalidPayload as exc:
        assert written_rows() == before, "a rejected batch wrote rows"
        assert None in expected, f"a batch the contract accepts was rejected: {exc}"
        bad = expected.index(None)
        assert f"task_calls[{bad}]" in str(exc), str(exc)
        return
    assert None not in expected, "enqueue_all() accepted a call the contract rejects"
    assert len(results) == len(batch)
    for index, (result, stored) in enumerate(zip(results, expected, strict=True)):
        assert stored is not None
        fetched = backend.get_result(result.id)
        same_json(stored[0], fetched.args, f"task_calls[{index}].args")
        same_json(stored[1], fetched.kwargs, f"task_calls[{index}].kwargs")


def test_integer_too_long_for_json_is_rejected_as_invalid_payload(db: None) -> None:
    # 4301 digits: JSON cannot write it (json.dumps raises ValueError), so the
    # contract says InvalidPayload naming args[0].
    with pytest.raises(InvalidPayload, match=r"args\[0\]"):
        echo.enqueue(10**4300)
    assert Job.objects.count() == 0


# == 2. options ================================================================

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


# == 3. result ids =============================================================

# Ways to spell a string from the real job's id, random text and another uuid.
ID_SHAPES: list[Callable[[str, str, uuid.UUID], str]] = [
    lambda real, text, other: text,
    lambda real, text, other: real[:-1] + text,
    lambda real, text, other: text + real,
    lambda real, text, other: real + text,
    lambda real, text, other: real[:8] + text + real[8:],
    lambda real, text, other: real + "\x00",
    lambda real, text, other: real.replace("-", "") + "0",
    lambda real, text, other: str(other),
    lambda real, text, other: "{" + other.hex + "}",
    lambda real, text, other: "urn:uuid:" + str(other).upper(),
    lambda real, text, other: str(other) + text,
]


@fuzz(100)
@given(
    text=st.one_of(ANY_TEXT, st.text(max_size=80), HOSTILE_TEXT),
    shape=st.sampled_from(ID_SHAPES),
    other=st.uuids(),
)
@example(text="", shape=ID_SHAPES[0], other=uuid.UUID(int=0))
@example(text="\x00", shape=ID_SHAPES[0], other=uuid.UUID(int=0))
@example(text="0" * 32, shape=ID_SHAPES[0], other=uuid.UUID(int=0))
@example(text="\u0661" * 32, shape=ID_SHAPES[0], other=uuid.UUID(int=0))  # int() takes these
@example(text="' OR 1=1 --", shape=ID_SHAPES[0], other=uuid.UUID(int=0))
@example(text="x" * 100_000, shape=ID_SHAPES[0], other=uuid.UUID(int=0))
@example(text="", shape=ID_SHAPES[7], other=uuid.UUID(int=2**128 - 1))
def test_get_result_of_a_string_that_is_no_job_id_raises_does_not_exist(
    db: None,
    backend: DjQueueBackend,
    text: str,
    shape: Callable[[str, str, uuid.UUID], str],
    other: uuid.UUID,
) -> None:
    # One real job, so that a query runs against a table with a row in it.
    real = echo.enqueue(1).id
    result_id = shape(real, text, other)
    try:
        found = backend.get_result(result_id)
    except TaskResultDoesNotExist:
        return
    # Only a spelling of the real job's id may find it (uuid accepts several).
    assert found.id == real, f"get_result({result_id!r}) found {found.id}"


# == 4. hostile rows ===========================================================


def execution_context(process: Any) -> ExecutionContext:
    # A real worker's stopping() is False until shutdown; True ends any retry
    # loop of a write the database keeps refusing.
    return ExecutionContext(
        alias="default", process_id=process.pk, preserve_finished_jobs=True, stopping=lambda: True
    )


def claim_all(process: Any) -> list[Job]:
    return claim_jobs(
        "default", process_id=process.pk, worker_id=process.name, selectors=["*"], limit=10
    )


def run_claimed(process: Any) -> None:
    """Claim every ready job and run each as a worker thread does; whatever
    execute_job raises fails the test."""
    context = execution_context(process)
    for job in claim_all(process):
        execute_job(job, context)


def hostile_job(**row: Any) -> str:
    """A job of ``add`` whose row is then rewritten with ``row``."""
    job_id = add.enqueue(1, 2).id
    Job.objects.filter(pk=job_id).update(**row)
    return job_id


def assert_failed_unresolvable(job_id: str, task_path: str) -> None:
    assert state_of(job_id) == "failed"
    failure = FailedExecution.objects.get(job_id=job_id)
    assert failure.exception_class == NOT_RESOLVABLE
    assert repr(task_path) in failure.message
    assert Job.objects.get(pk=job_id).errors[-1]["exception_class_path"] == NOT_RESOLVABLE


def app_packages() -> list[str]:
    return [config.name for config in apps.get_app_configs()]


def inside_an_app_package(module_path: str) -> bool:
    """README: a task module is imported only if it belongs to the package of
    an app in INSTALLED_APPS."""
    return any(module_path == name or module_path.startswith(f"{name}.") for name in app_packages())


@pytest.fixture
def warm_worker(worker_process: Any) -> Any:
    """The worker process, after one unresolvable job ran: the first failure
    may import what formatting a traceback needs, which is no task code."""
    hostile_job(task_path="no_such_package.task")
    run_claimed(worker_process)
    Job.objects.all().delete()
    return worker_process


# Callables a row could name to run code: none is a Task, so none may run.
# Each case: task path, and the args that would create ``marker`` if called.
CALLABLES_THAT_WRITE: dict[str, Callable[[Path], list[Any]]] = {
    "os.system": lambda marker: [f"touch {marker}"],
    "os.mkdir": lambda marker: [str(marker)],
    "subprocess.run": lambda marker: [["touch", str(marker)]],
    "subprocess.check_call": lambda marker: [["touch", str(marker)]],
    "builtins.exec": lambda marker: [f"open({str(marker)!r}, 'w').close()"],
    "builtins.eval": lambda marker: [f"open({str(marker)!r}, 'w').close()"],
    "builtins.open": lambda marker: [str(marker), "w"],
    "io.open": lambda marker: [str(marker), "w"],
    "shutil.copy": lambda marker: [__file__, str(marker)],
    "pathlib.Path.touch": lambda marker: [str(marker)],
}


@pytest.mark.parametrize("task_path", CALLABLES_THAT_WRITE)
def test_a_callable_that_is_no_task_is_never_called(
    warm_worker: Any, tmp_path: Path, task_path: str
) -> None:
    marker = tmp_path / "called"
    job_id = hostile_job(task_path=task_path, args=CALLABLES_THAT_WRITE[task_path](marker))
    run_claimed(warm_worker)
    assert_failed_unresolvable(job_id, task_path)
    assert not marker.exists(), f"{task_path} was called"
    assert assert_invariants() == {"failed": 1}


@pytest.mark.parametrize(
    "task_path",
    [
        "antigravity.fly",  # opens a web browser on import
        "this.s",  # prints the Zen of Python on import
        "tkinter.Tk",
        "turtle.forward",
        "idlelib.pyshell.main",
        "webbrowser.open",
        "smtplib.SMTP",
        "xmlrpc.client.ServerProxy",
        "builtins.__import__",
        "importlib.import_module",
        "ctypes.CDLL",
        "pickle.loads",
    ],
)
def test_a_module_outside_installed_apps_is_never_imported(
    warm_worker: Any, task_path: str
) -> None:
    # Arguments that would import a module outside every app if the path ran.
    job_id = hostile_job(task_path=task_path, args=["antigravity"])
    before = set(sys.modules)
    run_claimed(warm_worker)
    assert set(sys.modules) - before == set()
    assert_failed_unresolvable(job_id, task_path)


@pytest.mark.parametrize(
    "task_path",
    [
        "tests.taskapp.tasks.not_a_task",  # the function under a Task
        "tests.taskapp.tasks.MARKER",  # a str
        "tests.taskapp.tasks.time",  # a module
        "tests.taskapp.tasks.TaskContext",  # a class
        "tests.taskapp.tasks.linear_backoff",
        "tests.taskapp.apps.TaskAppConfig",
        "tests.taskapp.tasks.add.func",
        "tests.taskapp.tasks.add.__call__",
        "tests.taskapp.tasks",
        "tests.taskapp.tasks.",
        "tests.taskapp.no_such_module.add",
        "dj_queue.models.Job",
        "dj_queue.api.enqueue_on_commit",
        "dj_queue",
        "",
        ".",
        "..",
        ".tests.taskapp.tasks.add",
        "tests..taskapp.tasks.add",
        "tests.taskapp.tasks.add ",
        " tests.taskapp.tasks.add",
        "TESTS.taskapp.tasks.add",
        "tests/taskapp/tasks.add",
        "tests.taskapp.tasks.ädd",
        "😀.😀",
        "a." * 127 + "a",
        "x" * TASK_PATH_MAX_LENGTH,
    ],
)
def test_a_path_that_names_no_task_fails_its_job(warm_worker: Any, task_path: str) -> None:
    job_id = hostile_job(task_path=task_path)
    run_claimed(warm_worker)
    assert_failed_unresolvable(job_id, task_path)
    assert assert_invariants() == {"failed": 1}


JSON_NULL = Value(None, output_field=JSONField())


@pytest.mark.parametrize(
    ("row", "error_class", "reason"),
    [
        ({"args": JSON_NULL}, INVALID_PAYLOAD, "malformed arguments"),
        ({"kwargs": JSON_NULL}, INVALID_PAYLOAD, "malformed arguments"),
        ({"args": {"0": 1, "1": 2}}, INVALID_PAYLOAD, "malformed arguments"),
        ({"args": "12"}, INVALID_PAYLOAD, "malformed arguments"),
        ({"args": True}, INVALID_PAYLOAD, "malformed arguments"),
        ({"kwargs": [["a", 1]]}, INVALID_PAYLOAD, "malformed arguments"),
        ({"kwargs": 0}, INVALID_PAYLOAD, "malformed arguments"),
        ({"args": [[1, 2]]}, "builtins.TypeError", "add()"),
        ({"args": [], "kwargs": {"": 1}}, "builtins.TypeError", "add()"),
        ({"args": [], "kwargs": {"a": 1, "b": 2, "c": 3}}, "builtins.TypeError", "add()"),
        ({"args": [1, 2], "kwargs": {"a": 1}}, "builtins.TypeError", "add()"),
        ({"args": [1, "two"]}, "builtins.TypeError", "unsupported operand"),
    ],
    ids=repr,
)
def test_arguments_of_the_wrong_shape_fail_the_job_with_the_reason(
    warm_worker: Any, row: dict[str, Any], error_class: str, reason: str
) -> None:
    job_id = hostile_job(**row)
    run_claimed(warm_worker)
    assert state_of(job_id) == "failed"
    failure = FailedExecution.objects.get(job_id=job_id)
    assert failure.exception_class == error_class
    assert reason in failure.message
    assert assert_invariants() == {"failed": 1}


# Arbitrary text a varchar column stores on every database: no NUL
# (PostgreSQL) and no lone surrogates (not UTF-8).
STORABLE_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
STDLIB_NOT_IMPORTED = ["antigravity", "this", "tkinter", "turtle", "idlelib", "smtplib", "imaplib"]
PATH_PARTS = st.one_of(
    st.sampled_from([*STDLIB_NOT_IMPORTED, "os", "subprocess", "dj_queue", "tests", "taskapp"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.text(STORABLE_TEXT, max_size=6),
)
TASK_PATH_TEXT = st.one_of(
    st.text(STORABLE_TEXT, max_size=TASK_PATH_MAX_LENGTH),
    st.lists(PATH_PARTS, min_size=1, max_size=5).map(".".join),
).filter(lambda path: len(path) <= TASK_PATH_MAX_LENGTH)


@fuzz(100)
@given(task_path=TASK_PATH_TEXT)
@example(task_path="os.system")
@example(task_path="antigravity.fly")
@example(task_path="tests.taskapp.tasks.not_a_task")
@example(task_path="dj_queue.runtime.execution.execute_job")
@example(task_path="tests.taskapp.tasks.add.func")
@example(task_path="\u202etests.taskapp.tasks.add")
def test_any_task_path_fails_its_job_and_imports_nothing_outside_installed_apps(
    warm_worker: Any, task_path: str
) -> None:
    module_path = task_path.rpartition(".")[0]
    Job.objects.all().delete()
    job_id = hostile_job(task_path=task_path)
    [job] = claim_all(warm_worker)
    before = set(sys.modules)
    execute_job(job, execution_context(warm_worker))
    if not inside_an_app_package(module_path):
        assert set(sys.modules) - before == set(), "a module outside the apps was imported"
    failure = FailedExecution.objects.filter(job_id=job_id).first()
    if failure is None or failure.exception_class != NOT_RESOLVABLE:
        # The path names one of the suite's tasks (hypothesis draws constants
        # from the code it tests): it ran, as it should.
        assert isinstance(resolve_task(task_path), Task)
        return
    assert_failed_unresolvable(job_id, task_path)
    assert_invariants()


def write_raw_json(job_id: str, column: str, text: str) -> bool:
    """Store ``text`` as-is in one JSON column of the job; False if the
    database refuses it (each one checks JSON its own way)."""
    quote = connection.ops.quote_name
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    pk = Job._meta.pk.get_db_prep_value(uuid.UUID(job_id), connection)
    sql = f"UPDATE {quote(Job._meta.db_table)} SET {quote(column)} = %s{cast} WHERE id = %s"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [text, pk])
    except DatabaseError:
        return False
    return True


# JSON texts as a hand, a script or another program might write them: odd
# numbers (exponents up to 400, which jsonb expands into integer digits),
# escapes of NUL and of lone or swapped surrogates, duplicate keys, whitespace.
JSON_NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.builds("{}e{}".format, st.integers(-999, 999), st.integers(-400, 400)),
    st.sampled_from(["-0", "0.0", "-0.0", "1E5", "1e-400", "2e308", "0.1", "1.5e300", "9" * 300]),
)
JSON_STRINGS = st.one_of(
    st.text(max_size=5).map(json.dumps),
    st.sampled_from(['"\\u0000"', '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"', '"\\/"']),
)
JSON_TEXTS = st.recursive(
    st.one_of(JSON_NUMBERS, JSON_STRINGS, st.sampled_from(["true", "false", "null"])),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(JSON_STRINGS, children), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
        ),
    ),
    max_leaves=10,
)


def mostly(usual: SearchStrategy[str], rare: SearchStrategy[str]) -> SearchStrategy[str]:
    """``usual`` four times in five. Here: a text the database refuses tests
    the database, not dj_queue, so most texts are JSON."""
    return st.integers(0, 4).flatmap(lambda draw: rare if draw == 0 else usual)


DAMAGED_JSON_TEXTS = st.one_of(
    st.builds(lambda text, cut: text[:cut], JSON_TEXTS, st.integers(0, 40)),  # truncated
    st.builds("{} {}".format, JSON_TEXTS, st.sampled_from(["junk", "]", ",", "//"])),
    st.sampled_from(["NaN", "[Infinity]", "[1,]", "{'a': 1}", "", "[", '{"a"}']),
    st.text(max_size=12),
)


@fuzz(100)
@given(
    args_text=mostly(st.one_of(st.just("[1, 2]"), JSON_TEXTS), DAMAGED_JSON_TEXTS),
    kwargs_text=mostly(st.one_of(st.just("{}"), JSON_TEXTS), DAMAGED_JSON_TEXTS),
)
@example(args_text="[1,", kwargs_text="{}")
@example(args_text="null", kwargs_text="null")
@example(args_text='{"a": 1}', kwargs_text="[1]")
@example(args_text='["\\u0000", "\\ud800"]', kwargs_text="{}")
@example(args_text="[1e400, -1e-400, 2e308]", kwargs_text='{"a": 1, "a": 2}')
def test_any_json_a_database_stores_is_settled_by_the_worker(
    warm_worker: Any, args_text: str, kwargs_text: str
) -> None:
    Job.objects.all().delete()
    job_id = echo.enqueue().id
    stored = write_raw_json(job_id, "args", args_text) and write_raw_json(
        job_id, "kwargs", kwargs_text
    )
    if not stored:
        event("refused by the database")
        return  # nothing a worker could meet
    run_claimed(warm_worker)
    job = Job.objects.get(pk=job_id)
    state = state_of(job_id)
    if state == "finished":
        assert job.return_value == {"args": job.args, "kwargs": job.kwargs}
    else:
        assert state == "failed"
        assert job.errors[-1]["exception_class_path"] == INVALID_PAYLOAD
    assert_invariants()


@pytest.mark.parametrize("text", ["[1,", '{"a": 1', "[NaN]", "[Infinity]", "{'a': 1}", ""])
def test_json_that_is_not_valid_cannot_be_stored_on_any_database(db: None, text: str) -> None:
    # Why the hostile-row tests write valid JSON of the wrong shape: SQLite and
    # MariaDB check JSON_VALID, PostgreSQL's jsonb parses what it stores.
    job_id = echo.enqueue().id
    assert not write_raw_json(job_id, "args", text)
    assert Job.objects.get(pk=job_id).args == []


def test_a_row_with_an_integer_python_cannot_decode_does_not_stall_the_claim(
    warm_worker: Any,
) -> None:
    # Valid JSON every database stores (jsonb too: '[1e5000]' becomes these
    # digits), which json.loads refuses: the claim must still go on.
    poisoned = echo.enqueue().id
    assert write_raw_json(poisoned, "args", "[" + "9" * 5000 + "]")
    healthy = add.enqueue(1, 2).id
    run_claimed(warm_worker)
    assert state_of(healthy) == "finished"
    assert state_of(poisoned) == "failed"


@pytest.mark.parametrize(
    "row",
    [
        {"errors": 5},
        # The claim appends the worker's name; PostgreSQL and MariaDB make an
        # array of 5 and the name, SQLite's claim leaves the 5 alone.
        {"worker_ids": 5},
    ],
    ids=repr,
)
def test_a_row_with_bookkeeping_of_the_wrong_type_fails_its_job(
    warm_worker: Any, row: dict[str, Any]
) -> None:
    job_id = hostile_job(task_path="no_such_package.task", **row)
    run_claimed(warm_worker)
    assert state_of(job_id) == "failed"


def retry_policy(**changes: Any) -> dict[str, Any]:
    return {
        "max_attempts": 3,
        "delay": 1.0,
        "max_delay": 10.0,
        "jitter": False,
        "backoff": None,
        "retry_on": ["builtins.Exception"],
        **changes,
    }


@pytest.mark.parametrize(
    "policy",
    [
        retry_policy(delay="nan", max_delay="nan"),
        retry_policy(delay="1e400", max_delay="1e400"),
        retry_policy(delay=1e12, max_delay=1e12),
    ],
    ids=["nan", "infinite", "beyond-year-9999"],
)
def test_a_row_whose_retry_delay_no_clock_can_reach_fails_its_job(
    warm_worker: Any, policy: dict[str, Any]
) -> None:
    job_id = hostile_job(task_path="no_such_package.task", retry_policy=policy)
    run_claimed(warm_worker)
    assert state_of(job_id) in ("failed", "scheduled")


def test_a_valid_but_enormous_retry_delay_fails_or_schedules_the_job(warm_worker: Any) -> None:
    # Not a hostile row: OPTIONS accepts any finite delay, and 1e12 s is
    # past the year 9999, datetime's last.
    huge = {"retries": {"max_attempts": 2, "delay": 1e12, "max_delay": 1e12}}
    with override_settings(TASKS=tasks_setting(options=huge)):
        job_id = fail.enqueue("boom").id
        run_claimed(warm_worker)
    assert state_of(job_id) in ("failed", "scheduled")


def test_a_django_module_of_no_installed_app_is_never_imported(warm_worker: Any) -> None:
    # django.contrib.humanize is not in INSTALLED_APPS; README: "imported only
    # if its module belongs to the package of an app in INSTALLED_APPS".
    module = "django.contrib.humanize"
    if module in sys.modules:
        pytest.skip(f"{module} was imported before this test")
    job_id = hostile_job(task_path=f"{module}.x")
    try:
        run_claimed(warm_worker)
        assert_failed_unresolvable(job_id, f"{module}.x")
        assert module not in sys.modules, f"{module} was imported"
    finally:
        sys.modules.pop(module, None)
