"""``execute_job``: running a claimed job and recording what happened."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

import pytest
from django.tasks import TaskResultStatus, task

from dj_queue.models import FailedExecution, Job
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.processes import deregister_process
from dj_queue.runtime.execution import ExecutionContext, execute_job
from tests.invariants import assert_invariants, state_of
from tests.taskapp import tasks

pytestmark = pytest.mark.django_db

NOT_RESOLVABLE = "dj_queue.exceptions.TaskNotResolvable"


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


@task
def raise_unprintable():
    raise UnprintableError()


@task
def raise_with_nul():
    raise ValueError("read b'\x00' where text was expected: \x00")


@task
def raise_with_surrogate():
    # What decoding a non-UTF-8 file name with surrogateescape gives.
    raise ValueError("cannot open " + b"caf\xe9.txt".decode("utf-8", "surrogateescape"))


def context(process, preserve: bool = True) -> ExecutionContext:
    return ExecutionContext(
        alias="default",
        process_id=process.id,
        preserve_finished_jobs=preserve,
        stopping=lambda: False,
    )


def claim_one(process) -> Job:
    [job] = claim_jobs(
        "default", process_id=process.id, worker_id="worker-1", selectors=["*"], limit=1
    )
    return job


def run(process, task, *args, preserve: bool = True, **kwargs) -> str:
    """Enqueue ``task``, claim it and execute it; returns the job id."""
    result = task.enqueue(*args, **kwargs)
    execute_job(claim_one(process), context(process, preserve))
    return result.id


def run_with_row(process, task_path: str | None = None, **row) -> str:
    """Enqueue ``add``, rewrite its row before the claim, then execute it."""
    result = tasks.add.enqueue(1, 2)
    if task_path is not None:
        row["task_path"] = task_path
    Job.objects.filter(pk=result.id).update(**row)
    execute_job(claim_one(process), context(process))
    return result.id


def failure_of(job_id: str) -> FailedExecution:
    assert state_of(job_id) == "failed"
    return FailedExecution.objects.get(job_id=job_id)


def test_success_records_the_return_value(worker_process, backend):
    job_id = run(worker_process, tasks.add, 2, 3)

    job = Job.objects.get(pk=job_id)
    assert job.return_value == 5
    assert job.finished_at is not None
    result = backend.get_result(job_id)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert assert_invariants() == {"finished": 1}


def test_success_with_kwargs_and_a_json_return_value(worker_process):
    job_id = run(worker_process, tasks.echo, 1, "two", key={"nested": [3]})

    assert Job.objects.get(pk=job_id).return_value == {
        "args": [1, "two"],
        "kwargs": {"key": {"nested": [3]}},
    }
    assert_invariants()


def test_success_without_preserve_deletes_the_job(worker_process):
    job_id = run(worker_process, tasks.add, 2, 3, preserve=False)

    assert not Job.objects.filter(pk=job_id).exists()
    assert_invariants()


def test_async_task_runs_to_completion(worker_process):
    job_id = run(worker_process, tasks.async_add, 2, 3)

    assert Job.objects.get(pk=job_id).return_value == 5
    assert_invariants()


def test_raising_task_fails_with_its_traceback(worker_process, backend):
    job_id = run(worker_process, tasks.fail, "kaput")

    failure = failure_of(job_id)
    assert failure.exception_class == "builtins.ValueError"
    assert failure.message == "kaput"
    assert "raise ValueError(message)" in failure.traceback
    assert failure.traceback.rstrip().endswith("ValueError: kaput")
    result = backend.get_result(job_id)
    assert result.status == TaskResultStatus.FAILED
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"]
    assert result.errors[0].traceback == failure.traceback
    assert assert_invariants() == {"failed": 1}


def test_task_raising_system_exit_fails_without_propagating(worker_process):
    job_id = run(worker_process, tasks.exit_task)

    failure = failure_of(job_id)
    assert failure.exception_class == "builtins.SystemExit"
    assert failure.message == "3"
    assert_invariants()


def test_unserializable_return_value_fails_the_job(worker_process):
    job_id = run(worker_process, tasks.bad_return)

    assert failure_of(job_id).exception_class == "dj_queue.exceptions.InvalidPayload"
    assert Job.objects.get(pk=job_id).return_value is None
    assert_invariants()


@pytest.mark.parametrize(
    "task_path",
    [
        "tests.taskapp.tasks.not_a_task",
        "tests.taskapp.tasks.no_such_attribute",
        "os.path.join",
        "json.dumps",
        "tests.taskapp.no_such_module.add",
        "no_such_package.tasks.add",
        "not_dotted",
    ],
)
def test_unresolvable_task_path_fails_with_task_not_resolvable(worker_process, task_path):
    job_id = run_with_row(worker_process, task_path)

    failure = failure_of(job_id)
    assert failure.exception_class == NOT_RESOLVABLE
    assert repr(task_path) in failure.message
    assert Job.objects.get(pk=job_id).errors[-1]["exception_class_path"] == NOT_RESOLVABLE
    assert assert_invariants() == {"failed": 1}


def test_task_path_outside_installed_apps_is_never_imported(worker_process):
    # colorsys: a stdlib module nothing in the suite imports.
    assert "colorsys" not in sys.modules, "pick a module nobody imports"

    job_id = run_with_row(worker_process, "colorsys.rgb_to_hsv")

    assert failure_of(job_id).exception_class == NOT_RESOLVABLE
    assert "colorsys" not in sys.modules
    assert_invariants()


class FailingImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module, inside an installed app's package, whose import raises."""

    name = "tests.taskapp.fails_on_import"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def find_spec(self, fullname, path, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname == self.name else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise self.exc


@pytest.fixture
def failing_import(monkeypatch):
    def install(exc: BaseException) -> str:
        monkeypatch.setattr(sys, "meta_path", [FailingImport(exc), *sys.meta_path])
        return f"{FailingImport.name}.task"

    yield install
    sys.modules.pop(FailingImport.name, None)


def test_module_failing_at_import_fails_with_task_not_resolvable(worker_process, failing_import):
    job_id = run_with_row(worker_process, failing_import(RuntimeError("broken at import")))

    assert failure_of(job_id).exception_class == NOT_RESOLVABLE
    assert_invariants()


def test_module_exiting_at_import_fails_the_job_without_propagating(worker_process, failing_import):
    try:
        job_id = run_with_row(worker_process, failing_import(SystemExit(2)))
    except SystemExit:
        pytest.fail("SystemExit raised by importing the task's module escaped execute_job")

    assert state_of(job_id) == "failed"
    assert_invariants()


@pytest.mark.parametrize(
    "row",
    [
        {"kwargs": {"c": 1}},
        {"args": [1]},
        {"args": [1, 2, 3]},
        {"args": [1], "kwargs": {"a": 1}},
    ],
    ids=repr,
)
def test_arguments_not_matching_the_signature_fail_the_job(worker_process, row):
    job_id = run_with_row(worker_process, **row)

    failure = failure_of(job_id)
    assert failure.exception_class == "builtins.TypeError"
    assert "add()" in failure.message
    assert assert_invariants() == {"failed": 1}


@pytest.mark.parametrize(
    "row",
    [
        {"args": 7},
        {"args": {"a": 1}},
        {"args": "12"},
        {"kwargs": ["not", "a", "mapping"]},
        {"kwargs": "text"},
    ],
    ids=repr,
)
def test_arguments_of_the_wrong_json_type_fail_the_job(worker_process, row):
    job_id = run_with_row(worker_process, **row)

    assert failure_of(job_id).exception_class == "dj_queue.exceptions.InvalidPayload"
    assert assert_invariants() == {"failed": 1}


def test_context_sees_the_first_attempt(worker_process):
    job_id = run(worker_process, tasks.with_context, "v")

    assert Job.objects.get(pk=job_id).return_value == {"attempt": 1, "id": job_id, "value": "v"}
    assert_invariants()


def test_outcome_is_not_recorded_once_the_claim_was_taken_back(worker_process):
    job_id = tasks.add.enqueue(2, 3).id
    job = claim_one(worker_process)
    deregister_process("default", worker_process.id)

    execute_job(job, context(worker_process))

    job = Job.objects.get(pk=job_id)
    assert job.return_value is None
    assert failure_of(job_id).exception_class == "dj_queue.exceptions.ProcessExitError"
    assert assert_invariants() == {"failed": 1}


def run_giving_up_on_write_errors(process, task) -> str:
    """Like ``run``, but a worker that is stopping: a failed write is not retried forever."""
    result = task.enqueue()
    job = claim_one(process)
    stopping = ExecutionContext(
        alias="default", process_id=process.id, preserve_finished_jobs=True, stopping=lambda: True
    )
    try:
        execute_job(job, stopping)
    except BaseException as exc:
        pytest.fail(f"execute_job raised {exc!r}")
    return result.id


def test_exception_that_cannot_be_printed_fails_the_job(worker_process):
    job_id = run_giving_up_on_write_errors(worker_process, raise_unprintable)

    assert failure_of(job_id).exception_class.endswith(".UnprintableError")
    assert_invariants()


def test_exception_message_with_a_nul_character_fails_the_job(worker_process):
    job_id = run_giving_up_on_write_errors(worker_process, raise_with_nul)

    failure = failure_of(job_id)
    assert failure.exception_class == "builtins.ValueError"
    assert "where text was expected" in failure.message
    assert_invariants()


def test_exception_message_with_a_lone_surrogate_fails_the_job(worker_process):
    job_id = run_giving_up_on_write_errors(worker_process, raise_with_surrogate)

    failure = failure_of(job_id)
    assert failure.exception_class == "builtins.ValueError"
    assert "cannot open caf" in failure.message
    assert_invariants()
