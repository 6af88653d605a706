"""The ``django.tasks`` backend contract, as ``DjQueueBackend`` keeps it.

Jobs are run the way a worker runs them: claimed with ``claim_jobs`` and
executed with ``execute_job``, against the real database.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.dispatch import Signal
from django.tasks import Task, TaskResult, TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as dj_timezone

from dj_queue.backend import DjQueueBackend
from dj_queue.exceptions import ConfigurationError, InvalidPayload
from dj_queue.models import Job
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import retry_failed_job
from dj_queue.operations.processes import deregister_process, register_process
from dj_queue.runtime.execution import ExecutionContext, execute_job
from tests.conftest import tasks_setting
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import (
    add,
    async_add,
    echo,
    exit_task,
    fail,
    noop,
    send_email,
    with_context,
)

BACKEND_PATH = "dj_queue.backend.DjQueueBackend"


# -- helpers ---------------------------------------------------------------


def claim(process, limit: int = 10) -> list[Job]:
    return claim_jobs(
        "default",
        process_id=process.pk,
        worker_id=process.name,
        selectors=["*"],
        limit=limit,
    )


def run(jobs: list[Job], process) -> None:
    context = ExecutionContext(
        alias="default",
        process_id=process.pk,
        preserve_finished_jobs=task_backends["default"].config.preserve_finished_jobs,
        stopping=lambda: False,
    )
    for job in jobs:
        execute_job(job, context)


def claim_and_run(process) -> list[Job]:
    jobs = claim(process)
    run(jobs, process)
    return jobs


def assert_same_result(expected: TaskResult, actual: TaskResult) -> None:
    for field in dataclasses.fields(TaskResult):
        assert getattr(actual, field.name) == getattr(expected, field.name), field.name
    assert actual == expected


@contextmanager
def connected(signal: Signal, receiver: Callable) -> Iterator[None]:
    signal.connect(receiver, weak=False)
    try:
        yield
    finally:
        signal.disconnect(receiver)


def recorder(calls: list) -> Callable:
    def receiver(sender, task_result, **kwargs):
        # The status is read now: the same TaskResult object moves on later.
        calls.append((sender, task_result, task_result.status))

    return receiver


def raising_receiver(sender, task_result, **kwargs):
    raise RuntimeError("receiver blew up")


# -- backend flags and construction -----------------------------------------


def test_backend_supports_defer_async_get_result_and_priority(backend):
    assert isinstance(backend, DjQueueBackend)
    assert backend.supports_defer is True
    assert backend.supports_async_task is True
    assert backend.supports_get_result is True
    assert backend.supports_priority is True


def test_backend_construction_and_task_binding_do_no_database_access(db, django_assert_num_queries):
    tasks = tasks_setting()
    tasks["fresh"] = copy.deepcopy(tasks["default"])
    with override_settings(TASKS=tasks):
        with django_assert_num_queries(0):
            DjQueueBackend("standalone", copy.deepcopy(tasks["default"]))
            fresh = task_backends["fresh"]
            bound = add.using(backend="fresh")
        assert isinstance(fresh, DjQueueBackend)
        assert bound.get_backend() is fresh


def test_bad_options_raise_on_first_use_not_at_construction(db):
    with override_settings(TASKS=tasks_setting(options={"mode": "thread"})):
        backend = task_backends["default"]
        noop.using(priority=1)  # binding a task does not read the options
        with pytest.raises(ConfigurationError, match=r"TASKS\['default'\]\['OPTIONS'\]\['mode'\]"):
            noop.enqueue()
        assert isinstance(backend, DjQueueBackend)
    assert not Job.objects.exists()


# -- enqueue ---------------------------------------------------------------


def test_enqueue_returns_a_ready_result(db, backend):
    before = dj_timezone.now()
    result = add.enqueue(1, 2)
    after = dj_timezone.now()

    assert isinstance(result, TaskResult)
    assert isinstance(result.id, str)
    assert 0 < len(result.id) < 64
    assert result.task == add
    assert result.status == TaskResultStatus.READY
    assert not result.is_finished
    assert result.enqueued_at is not None
    assert dj_timezone.is_aware(result.enqueued_at)
    assert before <= result.enqueued_at <= after
    assert result.started_at is None
    assert result.finished_at is None
    assert result.last_attempted_at is None
    assert result.args == [1, 2]
    assert result.kwargs == {}
    assert result.backend == "default"
    assert result.errors == []
    assert result.worker_ids == []
    assert result.attempts == 0
    with pytest.raises(ValueError):
        _ = result.return_value
    assert assert_invariants() == {"ready": 1}


def test_enqueue_keeps_args_and_kwargs(db):
    result = echo.enqueue(1, "two", [3], four={"five": 5})
    assert result.args == [1, "two", [3]]
    assert result.kwargs == {"four": {"five": 5}}
    assert_invariants()


def test_enqueue_gives_each_call_its_own_id(db):
    ids = {noop.enqueue().id for _ in range(5)}
    assert len(ids) == 5
    assert_invariants()


def in_one_hour() -> datetime:
    return dj_timezone.now() + timedelta(hours=1)


TASK_VARIANTS: dict[str, Callable[[], tuple[Task, tuple, dict]]] = {
    "plain": lambda: (add, (1, 2), {}),
    "kwargs": lambda: (echo, (), {"a": [1, {"b": None}], "c": "d"}),
    "decorator-queue-and-priority": lambda: (send_email, ("a@example.com",), {}),
    "using-priority-and-queue": lambda: (add.using(priority=7, queue_name="other"), (1, 2), {}),
    "lowest-priority": lambda: (add.using(priority=-100), (1, 2), {}),
    "highest-priority": lambda: (add.using(priority=100), (1, 2), {}),
    "scheduled": lambda: (add.using(run_after=in_one_hour()), (1, 2), {}),
    "scheduled-other-timezone": lambda: (
        add.using(run_after=in_one_hour().astimezone(timezone(timedelta(hours=5, minutes=30)))),
        (1, 2),
        {},
    ),
    "run-after-in-the-past": lambda: (
        add.using(run_after=dj_timezone.now() - timedelta(minutes=5)),
        (1, 2),
        {},
    ),
    "async": lambda: (async_add, (1, 2), {}),
    "takes-context": lambda: (with_context, ("v",), {}),
}


@pytest.mark.parametrize("variant", TASK_VARIANTS)
def test_enqueued_result_equals_get_result(db, backend, variant):
    task, args, kwargs = TASK_VARIANTS[variant]()
    enqueued = task.enqueue(*args, **kwargs)
    fetched = backend.get_result(enqueued.id)
    assert fetched.status == TaskResultStatus.READY
    assert fetched.task == task
    assert_same_result(enqueued, fetched)
    assert_invariants()


def test_task_get_result_returns_the_result_of_that_task(db):
    enqueued = add.using(priority=3).enqueue(1, 2)
    assert_same_result(enqueued, add.get_result(enqueued.id))


def test_task_get_result_for_another_tasks_result_raises_mismatch(db):
    result = echo.enqueue(1)
    with pytest.raises(TaskResultMismatch):
        add.get_result(result.id)


def test_get_result_of_unknown_id_raises_does_not_exist(db, backend):
    add.enqueue(1, 2)
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(str(uuid.uuid4()))


@pytest.mark.parametrize(
    "result_id",
    ["nope", "", "x" * 100, "1", "0" * 65, "00000000-0000-0000-0000-00000000000g", None],
)
def test_get_result_of_malformed_id_raises_does_not_exist(db, backend, result_id):
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(result_id)


def test_get_result_still_reads_a_job_whose_queue_left_the_allow_list(db):
    enqueued = add.using(queue_name="legacy").enqueue(1, 2)
    with override_settings(TASKS=tasks_setting(QUEUES=["default"])):
        fetched = task_backends["default"].get_result(enqueued.id)
    assert fetched.id == enqueued.id
    assert fetched.task.queue_name == "legacy"


def test_scheduled_job_is_ready_but_not_claimed_before_run_after(db, backend, worker_process):
    result = add.using(run_after=in_one_hour()).enqueue(1, 2)
    assert claim(worker_process) == []
    assert backend.get_result(result.id).status == TaskResultStatus.READY
    assert assert_invariants() == {"scheduled": 1}


# -- status after running ----------------------------------------------------


def test_claimed_job_is_running(db, backend, worker_process):
    result = add.enqueue(1, 2)
    [job] = claim(worker_process)
    assert str(job.id) == result.id

    running = backend.get_result(result.id)
    assert running.status == TaskResultStatus.RUNNING
    assert not running.is_finished
    assert running.started_at is not None
    assert running.last_attempted_at == running.started_at
    assert running.finished_at is None
    assert running.worker_ids == [worker_process.name]
    assert running.attempts == 1
    with pytest.raises(ValueError):
        _ = running.return_value
    assert assert_invariants() == {"claimed": 1}


def test_successful_job_has_its_return_value(db, backend, worker_process):
    result = add.enqueue(1, 2)
    claim_and_run(worker_process)

    done = backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.is_finished
    assert done.return_value == 3
    assert done.errors == []
    assert done.worker_ids == [worker_process.name]
    assert done.attempts == 1
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert done.last_attempted_at == done.started_at
    assert assert_invariants() == {"finished": 1}


def test_task_returning_none_is_successful_with_none(db, backend, worker_process):
    result = noop.enqueue()
    claim_and_run(worker_process)
    done = backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value is None
    assert_invariants()


def test_async_task_runs_to_success(db, backend, worker_process):
    result = async_add.enqueue(20, 22)
    claim_and_run(worker_process)
    done = backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 42
    assert_invariants()


def test_refresh_reloads_the_result(db, worker_process):
    result = add.enqueue(1, 2)
    claim_and_run(worker_process)

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.finished_at is not None
    assert result.started_at is not None
    assert result.worker_ids == [worker_process.name]
    assert_invariants()


def test_failed_job_records_the_error(db, backend, worker_process):
    result = fail.enqueue("kaput happened")
    claim_and_run(worker_process)

    failed = backend.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.is_finished
    assert failed.finished_at is not None
    assert failed.attempts == 1
    [error] = failed.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert "kaput happened" in error.traceback
    assert "Traceback" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value
    assert assert_invariants() == {"failed": 1}


def test_task_raising_system_exit_fails_its_job(db, backend, worker_process):
    result = exit_task.enqueue()
    claim_and_run(worker_process)
    failed = backend.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class is SystemExit
    assert assert_invariants() == {"failed": 1}


def test_context_attempt_is_one_on_the_first_run(db, backend, worker_process):
    result = with_context.enqueue("v")
    claim_and_run(worker_process)
    done = backend.get_result(result.id)
    assert done.return_value == {"attempt": 1, "id": result.id, "value": "v"}
    assert_invariants()


def test_context_attempt_counts_earlier_attempts_after_a_retry(db, backend, worker_process):
    result = with_context.enqueue("v")
    claim(worker_process)
    # The first attempt's process goes away, failing the job it held.
    deregister_process("default", worker_process.pk)
    assert backend.get_result(result.id).status == TaskResultStatus.FAILED

    retry_failed_job(result.id)
    second = register_process("default", kind="worker", name="second", backend_alias="default")
    claim_and_run(second)

    done = backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == {"attempt": 2, "id": result.id, "value": "v"}
    assert done.worker_ids == [worker_process.name, "second"]
    assert done.attempts == 2
    assert_invariants()


def test_retried_job_keeps_first_start_and_moves_last_attempt(db, backend, worker_process):
    result = fail.enqueue("again")
    claim_and_run(worker_process)
    first = backend.get_result(result.id)

    retry_failed_job(result.id)
    ready = backend.get_result(result.id)
    assert ready.status == TaskResultStatus.READY
    assert ready.finished_at is None
    assert len(ready.errors) == 1

    claim_and_run(worker_process)
    second = backend.get_result(result.id)
    assert second.status == TaskResultStatus.FAILED
    assert second.attempts == len(second.worker_ids) == 2
    assert len(second.errors) == 2
    assert second.started_at == first.started_at
    assert second.last_attempted_at > first.last_attempted_at
    assert second.last_attempted_at > second.started_at
    assert_invariants()


# -- preserve_finished_jobs ----------------------------------------------------


def test_without_preserve_finished_jobs_a_successful_job_is_deleted(db, worker_process):
    with override_settings(TASKS=tasks_setting(options={"preserve_finished_jobs": False})):
        result = add.enqueue(1, 2)
        claim_and_run(worker_process)
        with pytest.raises(TaskResultDoesNotExist):
            task_backends["default"].get_result(result.id)
    assert state_of(result.id) == "missing"
    assert_invariants()


def test_without_preserve_finished_jobs_a_failed_job_is_kept(db, worker_process):
    with override_settings(TASKS=tasks_setting(options={"preserve_finished_jobs": False})):
        result = fail.enqueue()
        claim_and_run(worker_process)
        failed = task_backends["default"].get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert assert_invariants() == {"failed": 1}


# -- enqueue_all ---------------------------------------------------------------


def test_enqueue_all_returns_results_in_order(db, backend):
    results = backend.enqueue_all(
        [
            (add, [1, 2], {}),
            (echo, (), {"x": 1}),
            (send_email.using(run_after=in_one_hour()), ["a@example.com"], {}),
            (add, (3, 4), {}),
        ]
    )
    assert [r.task.module_path for r in results] == [
        add.module_path,
        echo.module_path,
        send_email.module_path,
        add.module_path,
    ]
    assert [r.args for r in results] == [[1, 2], [], ["a@example.com"], [3, 4]]
    assert results[1].kwargs == {"x": 1}
    assert all(r.status == TaskResultStatus.READY for r in results)
    for result in results:
        assert_same_result(result, backend.get_result(result.id))
    assert assert_invariants() == {"ready": 3, "scheduled": 1}


def test_enqueue_all_accepts_any_iterable(db, backend):
    results = backend.enqueue_all((add, [i, i], {}) for i in range(3))
    assert [r.args for r in results] == [[0, 0], [1, 1], [2, 2]]
    assert Job.objects.count() == 3
    assert_invariants()


def test_enqueue_all_of_nothing_returns_nothing(db, backend, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert backend.enqueue_all([]) == []


def test_enqueue_all_writes_a_batch_in_a_fixed_number_of_queries(db, backend):
    def queries_for(size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            backend.enqueue_all([(add, [i, 1], {}) for i in range(size)])
        return len(captured)

    assert queries_for(2) == queries_for(40)
    assert Job.objects.count() == 42
    assert_invariants()


def other_backend_tasks() -> dict:
    tasks = tasks_setting()
    tasks["other"] = {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    return tasks


INVALID_CALLS: dict[str, tuple[Callable[[], object], type[Exception]]] = {
    "payload": (lambda: (echo, [{1, 2}], {}), InvalidPayload),
    "payload-in-kwargs": (lambda: (echo, [], {"x": float("nan")}), InvalidPayload),
    "task-of-another-backend": (lambda: (add.using(backend="other"), [1, 2], {}), InvalidTask),
    "two-item-tuple": (lambda: (add, [1, 2]), TypeError),
    "not-a-task": (lambda: (add.func, [1, 2], {}), TypeError),
    "args-not-a-sequence": (lambda: (add, "12", {}), TypeError),
    "kwargs-not-a-mapping": (lambda: (add, [1, 2], [("a", 1)]), TypeError),
}


@pytest.mark.parametrize("kind", INVALID_CALLS)
def test_enqueue_all_with_one_invalid_call_writes_nothing(db, kind):
    make_call, error = INVALID_CALLS[kind]
    with override_settings(TASKS=other_backend_tasks()):
        backend = task_backends["default"]
        calls = [(add, [1, 2], {}), (noop, [], {}), make_call()]
        with pytest.raises(error, match=r"task_calls\[2\]"):
            backend.enqueue_all(calls)
    assert Job.objects.count() == 0
    assert_invariants()


def test_rejected_batch_sends_no_task_enqueued(db, backend):
    calls: list = []
    with connected(task_enqueued, recorder(calls)), pytest.raises(InvalidPayload):
        backend.enqueue_all([(add, [1, 2], {}), (echo, [object()], {})])
    assert calls == []


def test_enqueue_with_a_task_of_another_backend_is_rejected(db):
    with override_settings(TASKS=other_backend_tasks()):
        other_task = add.using(backend="other")
        with pytest.raises(InvalidTask, match="other"):
            task_backends["default"].enqueue(other_task, [1, 2], {})
    assert Job.objects.count() == 0


# -- validate_task ---------------------------------------------------------------


def test_queue_outside_the_allow_list_is_rejected(db):
    with override_settings(TASKS=tasks_setting(QUEUES=["default"])):
        with pytest.raises(InvalidTask):
            add.using(queue_name="other")
        # A task defined before the allow-list existed is checked again on enqueue.
        with pytest.raises(InvalidTask):
            send_email.enqueue("a@example.com")
        assert add.enqueue(1, 2).task.queue_name == "default"
    assert Job.objects.count() == 1


def test_empty_queue_list_allows_any_queue(db, backend):
    with override_settings(TASKS=tasks_setting(QUEUES=[])):
        result = add.using(queue_name="anything-goes").enqueue(1, 2)
    assert result.task.queue_name == "anything-goes"
    assert_invariants()


@pytest.mark.parametrize("priority", [101, -101, 1000, 1.5])
def test_priority_out_of_range_or_not_whole_is_rejected(priority):
    with pytest.raises(InvalidTask):
        add.using(priority=priority)


def test_naive_run_after_is_rejected():
    with pytest.raises(InvalidTask):
        add.using(run_after=datetime(2030, 1, 1, 12, 0))


@pytest.mark.parametrize("queue_name", ["*", "mail*", "a*b", "q" * 129])
def test_queue_name_with_star_or_too_long_is_rejected(queue_name):
    with pytest.raises(InvalidTask):
        add.using(queue_name=queue_name)


def test_queue_name_of_the_longest_allowed_length_round_trips(db, backend):
    result = add.using(queue_name="q" * 128).enqueue(1, 2)
    assert backend.get_result(result.id).task.queue_name == "q" * 128
    assert_invariants()


def long_named_function():
    return None


def test_task_path_too_long_to_store_is_rejected():
    func = types.FunctionType(
        long_named_function.__code__, long_named_function.__globals__, "f" * 300
    )
    func.__qualname__ = "f" * 300
    with pytest.raises(InvalidTask, match="longer than"):
        Task(func=func)


# -- signals ---------------------------------------------------------------


def test_enqueue_sends_task_enqueued_from_the_backend_class(db):
    calls: list = []
    with connected(task_enqueued, recorder(calls)):
        result = add.enqueue(1, 2)
    [(sender, task_result, status)] = calls
    assert sender is DjQueueBackend
    assert task_result == result
    assert status == TaskResultStatus.READY


def test_enqueue_all_sends_task_enqueued_for_each_result_in_order(db, backend):
    calls: list = []
    with connected(task_enqueued, recorder(calls)):
        results = backend.enqueue_all([(add, [1, 2], {}), (noop, [], {})])
    assert [task_result.id for _, task_result, _ in calls] == [r.id for r in results]


def test_running_a_job_sends_task_started_and_task_finished(db, worker_process):
    started: list = []
    finished: list = []
    with connected(task_started, recorder(started)), connected(task_finished, recorder(finished)):
        result = add.enqueue(1, 2)
        claim_and_run(worker_process)

    [(sender, task_result, status)] = started
    assert sender is DjQueueBackend
    assert task_result.id == result.id
    assert status == TaskResultStatus.RUNNING
    [(sender, task_result, status)] = finished
    assert sender is DjQueueBackend
    assert task_result.id == result.id
    assert status == TaskResultStatus.SUCCESSFUL
    assert task_result.return_value == 3


def test_failing_job_sends_task_finished_with_its_error(db, worker_process):
    finished: list = []
    with connected(task_finished, recorder(finished)):
        result = fail.enqueue("no good")
        claim_and_run(worker_process)

    [(_, task_result, status)] = finished
    assert task_result.id == result.id
    assert status == TaskResultStatus.FAILED
    assert task_result.errors[0].exception_class_path == "builtins.ValueError"


def test_raising_task_enqueued_receiver_does_not_fail_enqueue(db, backend, caplog):
    with (
        connected(task_enqueued, raising_receiver),
        caplog.at_level(logging.ERROR, logger="dj_queue"),
    ):
        result = add.enqueue(1, 2)
    assert backend.get_result(result.id).status == TaskResultStatus.READY
    assert any("receiver blew up" in str(r.exc_info) for r in caplog.records)
    assert assert_invariants() == {"ready": 1}


@pytest.mark.parametrize("signal", [task_started, task_finished], ids=["started", "finished"])
def test_raising_run_receiver_does_not_fail_a_successful_job(db, backend, worker_process, signal):
    result = add.enqueue(1, 2)
    with connected(signal, raising_receiver):
        claim_and_run(worker_process)
    done = backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 3
    assert done.errors == []
    assert assert_invariants() == {"finished": 1}


# -- async API ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_aenqueue_and_aget_result():
    async def scenario():
        enqueued = await add.aenqueue(1, 2)
        fetched = await add.aget_result(enqueued.id)
        return enqueued, fetched

    enqueued, fetched = async_to_sync(scenario)()
    assert enqueued.status == TaskResultStatus.READY
    assert_same_result(enqueued, fetched)
    assert_invariants()


@pytest.mark.django_db(transaction=True)
def test_aenqueue_all_and_arefresh(worker_process):
    backend = task_backends["default"]

    async def enqueue():
        return await backend.aenqueue_all([(add, [1, 2], {}), (echo, ["x"], {})])

    results = async_to_sync(enqueue)()
    assert [r.args for r in results] == [[1, 2], ["x"]]
    claim_and_run(worker_process)

    async def refresh():
        for result in results:
            await result.arefresh()

    async_to_sync(refresh)()
    assert [r.return_value for r in results] == [3, {"args": ["x"], "kwargs": {}}]
    assert assert_invariants() == {"finished": 2}


@pytest.mark.django_db(transaction=True)
def test_aget_result_of_unknown_id_raises_does_not_exist(backend):
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(backend.aget_result)(str(uuid.uuid4()))


def test_timestamps_are_utc_aware(db, backend, worker_process):
    result = add.enqueue(1, 2)
    claim_and_run(worker_process)
    done = backend.get_result(result.id)
    for value in (done.enqueued_at, done.started_at, done.finished_at, done.last_attempted_at):
        assert value.utcoffset() == timedelta(0)
    assert done.enqueued_at <= datetime.now(UTC)
