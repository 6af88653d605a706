"""Property tests of arguments (README "Data contract").

``enqueue()`` with any Python values either stores them so that
``get_result()`` hands back equal JSON (tuples as lists, UTF-8 bytes as text,
types kept: ``1.0`` stays a float, ``True`` a bool), or raises
``InvalidPayload`` naming where the value sits and writes no row at all. A
batch (``enqueue_all``) is stored whole or not at all.

Every property runs against the configured database (DJ_QUEUE_TEST_DB). The
explicit tests after each property pin the bugs it found, now fixed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from dj_queue.backend import DjQueueBackend
from dj_queue.exceptions import InvalidPayload
from dj_queue.models import Job, ReadyExecution, ScheduledExecution
from tests.fuzz_support import (
    ANY_TEXT,
    ANY_VALUES,
    HOSTILE_TEXT,
    JSON_VALUES,
    NON_STRING_KEYS,
    fuzz,
    nest,
)
from tests.taskapp.tasks import echo


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
