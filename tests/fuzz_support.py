"""Shared pieces of the fuzz tests (tests/test_fuzz_*.py): Hypothesis
settings, strategies of Python values of every kind, and the helpers that
write a job row by hand and run it as a worker does.

Every property runs against the configured database (DJ_QUEUE_TEST_DB).
DJ_QUEUE_FUZZ_SCALE multiplies every property's number of examples for a
longer local run.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC
from typing import Any

from django.apps import apps
from django.db import DatabaseError, connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from dj_queue.models import FailedExecution, Job
from dj_queue.operations.claims import claim_jobs
from dj_queue.runtime.execution import ExecutionContext, execute_job
from tests.invariants import state_of
from tests.taskapp.tasks import add

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


# == values ====================================================================
# Used by the arguments properties and by the options' recurring arguments.

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


# == hostile rows ==============================================================


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
