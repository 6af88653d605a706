"""Property tests of hostile rows (README "Which code a worker runs").

A job row written by hand with any task path or any JSON the database accepts
is settled by the worker's execution path (``execute_job``): the job ends
failed with an error naming the reason, nothing outside the installed apps'
packages is imported, nothing the path names is called, and the worker never
raises. Task paths, JSON written raw and retry policies of every kind.

Every property runs against the configured database (DJ_QUEUE_TEST_DB). The
explicit tests after each property pin the bugs it found, now fixed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db.models import JSONField, Value
from django.tasks import Task
from django.test import override_settings
from hypothesis import event, example, given
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from dj_queue.models import FailedExecution, Job
from dj_queue.models.constraints import TASK_PATH_MAX_LENGTH
from dj_queue.runtime.execution import execute_job
from dj_queue.tasks_registry import resolve_task
from tests.conftest import tasks_setting
from tests.fuzz_support import (
    INVALID_PAYLOAD,
    NOT_RESOLVABLE,
    assert_failed_unresolvable,
    claim_all,
    execution_context,
    fuzz,
    hostile_job,
    inside_an_app_package,
    run_claimed,
    write_raw_json,
)
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, echo, fail


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
