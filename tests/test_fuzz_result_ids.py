"""Property tests of result ids.

``get_result()`` of any string that is not a job's id raises
``TaskResultDoesNotExist``, on every database (DJ_QUEUE_TEST_DB).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.tasks.exceptions import TaskResultDoesNotExist
from hypothesis import example, given
from hypothesis import strategies as st

from dj_queue.backend import DjQueueBackend
from tests.fuzz_support import ANY_TEXT, HOSTILE_TEXT, fuzz
from tests.taskapp.tasks import echo

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
