"""The data contract: what a task call stores is what comes back.

Arguments and return values are JSON. What would not survive a JSON round trip
(or that a supported database refuses) is rejected with ``InvalidPayload``;
everything else comes back equal, of the same types, on every database.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.tasks import TaskResultStatus, task

from dj_queue.exceptions import InvalidPayload
from dj_queue.models import Job
from dj_queue.operations.claims import claim_jobs
from dj_queue.runtime.execution import ExecutionContext, execute_job
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import bad_return, echo

VENDOR = connection.vendor


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@task
def returns_tuple():
    return (1, (2, "three"))


@task
def returns_lone_surrogate():
    return "\ud800"


@task
def returns_large_float():
    return 1e300


@task
def returns_nested(depth):
    return nested(depth)


def run_all(process, *, stopping=lambda: False) -> None:
    jobs = claim_jobs(
        "default", process_id=process.pk, worker_id=process.name, selectors=["*"], limit=10
    )
    context = ExecutionContext(
        alias="default",
        process_id=process.pk,
        preserve_finished_jobs=True,
        stopping=stopping,
    )
    for job in jobs:
        execute_job(job, context)


def assert_identical(expected: Any, actual: Any, where: str = "value") -> None:
    """Equal, and of the same JSON type all the way down (1.0 is not 1)."""
    assert type(actual) is type(expected), f"{where}: {actual!r} is not {expected!r}"
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), where
        for key in expected:
            assert_identical(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_identical(want, got, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
        assert math.copysign(1, actual) == math.copysign(1, expected), where
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# -- rejected at enqueue -----------------------------------------------------

CHECKED_BY_DJ_QUEUE = {
    "int-key": {1: "one"},
    "bool-key": {True: "yes"},
    "nan": math.nan,
    "inf": math.inf,
    "minus-inf": -math.inf,
    "nan-deep-inside": {"a": [1, {"b": math.nan}]},
    "nul-in-text": "a\x00b",
    "nul-in-key": {"a\x00b": 1},
}

REJECTED_BY_JSON = {
    "set": {1, 2},
    "frozenset": frozenset({1}),
    "object": object(),
    "datetime": datetime(2030, 1, 1, tzinfo=UTC),
    "decimal": Decimal("1.5"),
    "bytes-not-utf8": b"\xff\xfe",
    "tuple-key": {(1, 2): "pair"},
    "set-deep-inside": {"a": [1, {2}]},
}

REJECTED = {**CHECKED_BY_DJ_QUEUE, **REJECTED_BY_JSON}


def enqueue_at(position: str, value: Any):
    if position == "args":
        return echo.enqueue("fine", value)
    return echo.enqueue(ok="fine", x=value)


LOCATION = {"args": "args[1]", "kwargs": "kwargs['x']"}


@pytest.mark.parametrize("position", ["args", "kwargs"])
@pytest.mark.parametrize("name", REJECTED)
def test_value_that_json_would_change_is_rejected_and_not_written(db, name, position):
    with pytest.raises(InvalidPayload):
        enqueue_at(position, REJECTED[name])
    assert Job.objects.count() == 0


def test_invalid_payload_is_a_type_error(db):
    with pytest.raises(TypeError):
        echo.enqueue({1, 2})
    assert Job.objects.count() == 0


@pytest.mark.parametrize("position", ["args", "kwargs"])
@pytest.mark.parametrize(
    "name",
    [*CHECKED_BY_DJ_QUEUE, *REJECTED_BY_JSON],
)
def test_rejection_message_names_the_argument(db, name, position):
    with pytest.raises(InvalidPayload) as raised:
        enqueue_at(position, REJECTED[name])
    assert LOCATION[position] in str(raised.value)


def test_rejection_message_names_the_path_inside_the_argument(db):
    with pytest.raises(InvalidPayload, match=r"kwargs\['x'\]\['a'\]\[1\]\['b'\]"):
        echo.enqueue(x={"a": [1, {"b": math.nan}]})


def test_rejection_inside_a_batch_names_the_call_and_the_argument(db, backend):
    with pytest.raises(InvalidPayload) as raised:
        backend.enqueue_all([(echo, [1], {}), (echo, [], {"x": math.inf})])
    assert "task_calls[1]" in str(raised.value)
    assert "kwargs['x']" in str(raised.value)
    assert Job.objects.count() == 0


def test_text_with_a_lone_surrogate_is_rejected(db):
    with pytest.raises(InvalidPayload, match=r"args\[0\]"):
        echo.enqueue("\ud800")
    assert Job.objects.count() == 0


def test_arguments_nested_beyond_the_recursion_limit_are_rejected(db):
    with pytest.raises(InvalidPayload):
        echo.enqueue(nested(5000))
    assert Job.objects.count() == 0


def test_deeply_nested_arguments_are_rejected_or_round_trip(db, backend):
    value = nested(40)
    try:
        result = echo.enqueue(value)
    except InvalidPayload:
        assert Job.objects.count() == 0
    else:
        assert_identical([value], backend.get_result(result.id).args)


# -- round trips -------------------------------------------------------------

ROUND_TRIP = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "negative": -17,
    "int64-max": 2**63 - 1,
    "int64-min": -(2**63),
    "beyond-int64": 2**64 + 1,
    "huge-int": 10**40,
    "negative-huge-int": -(10**40),
    "tenth": 0.1,
    "pi": 3.141592653589793,
    "whole-float": 2.0,
    "negative-float": -2.5,
    "tiny-float": 1e-300,
    "denormal": 5e-324,
    "empty-text": "",
    "accents": "héllo wörld",
    "cjk": "日本語のテキスト",
    "emoji": "😀🎉 astral",
    "separators": "\u2028\u2029",
    "escapes": 'quote " backslash \\ newline \n tab \t',
    "control-chars": "\x01\x1f\x7f",
    "unicode-keys": {"ключ": "значение", "😀": 1, "": "empty key"},
    "empty-list": [],
    "empty-dict": {},
    "nested": {"a": [1, {"b": [None, True, 2.5, "x"]}], "c": {"d": {}}},
    "moderately-deep": nested(20),
    "long-text": "x" * 100_000,
    "many-items": list(range(5000)),
}


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_arguments_round_trip_unchanged(db, backend, name):
    value = ROUND_TRIP[name]
    result = echo.enqueue(value, k=value)
    assert_identical([value], result.args)
    assert_identical({"k": value}, result.kwargs)
    fetched = backend.get_result(result.id)
    assert_identical([value], fetched.args, "args")
    assert_identical({"k": value}, fetched.kwargs, "kwargs")
    assert fetched == result
    assert_invariants()


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_task_receives_and_returns_the_arguments_unchanged(db, backend, worker_process, name):
    value = ROUND_TRIP[name]
    result = echo.enqueue(value, k=value)
    run_all(worker_process)
    done = backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert_identical({"args": [value], "kwargs": {"k": value}}, done.return_value)
    assert_invariants()


# Floats PostgreSQL's jsonb would hand back changed (as an int, or another number).
FLOATS_POSTGRESQL_CHANGES = {
    "1e16": 1e16,
    "1e20": 1e20,
    "17-digits-e19": 1.2345678901234567e19,
    "1e300": 1e300,
    "float-max": 1.7976931348623157e308,
    "negative-1e22": -1e22,
}


@pytest.mark.parametrize("name", FLOATS_POSTGRESQL_CHANGES)
def test_float_postgresql_would_change_is_rejected_on_every_database(db, name):
    with pytest.raises(InvalidPayload, match=r"args\[0\].*PostgreSQL"):
        echo.enqueue(FLOATS_POSTGRESQL_CHANGES[name])
    assert Job.objects.count() == 0


def test_negative_zero_comes_back_equal(db, backend):
    result = echo.enqueue(-0.0)
    fetched = backend.get_result(result.id)
    assert fetched == result
    assert fetched.args == [0.0]


def test_large_float_return_value_fails_the_job(db, backend, worker_process):
    result = returns_large_float.enqueue()
    run_all(worker_process)
    failed = backend.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class is InvalidPayload
    assert assert_invariants() == {"failed": 1}


def test_tuples_become_lists(db, backend):
    result = echo.enqueue((1, (2, 3)), t=(4, (5,)))
    assert result.args == [[1, [2, 3]]]
    assert result.kwargs == {"t": [4, [5]]}
    assert backend.get_result(result.id) == result
    assert_invariants()


def test_utf8_bytes_become_text(db, backend):
    result = echo.enqueue("héllo".encode())
    assert_identical(["héllo"], result.args)
    assert backend.get_result(result.id) == result


def test_tuple_return_value_comes_back_as_lists(db, backend, worker_process):
    result = returns_tuple.enqueue()
    run_all(worker_process)
    assert_identical([1, [2, "three"]], backend.get_result(result.id).return_value)
    assert_invariants()


# -- return values -----------------------------------------------------------


def test_non_json_return_value_fails_the_job(db, backend, worker_process):
    result = bad_return.enqueue()
    run_all(worker_process)

    failed = backend.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    [error] = failed.errors
    assert error.exception_class_path == "dj_queue.exceptions.InvalidPayload"
    assert error.exception_class is InvalidPayload
    assert "return value" in error.traceback
    with pytest.raises(ValueError):
        _ = failed.return_value
    assert state_of(result.id) == "failed"
    assert assert_invariants() == {"failed": 1}


def test_lone_surrogate_return_value_fails_the_job_with_invalid_payload(
    db, backend, worker_process
):
    result = returns_lone_surrogate.enqueue()
    # A real worker's stopping() is False until shutdown; True ends any retry loop here.
    run_all(worker_process, stopping=lambda: True)
    failed = backend.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class is InvalidPayload
    assert assert_invariants() == {"failed": 1}


def test_deeply_nested_return_value_is_stored_or_fails_the_job(db, backend, worker_process):
    result = returns_nested.enqueue(40)
    # A real worker's stopping() is False until shutdown; True ends any retry loop here.
    run_all(worker_process, stopping=lambda: True)
    done = backend.get_result(result.id)
    assert done.status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    if done.status == TaskResultStatus.SUCCESSFUL:
        assert_identical(nested(40), done.return_value)
    else:
        assert done.errors[0].exception_class is InvalidPayload
    assert_invariants()
