"""Running one claimed job and recording its outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

from .. import retries
from ..concurrency import ConcurrencyLimit
from ..db import get_driver
from ..exceptions import JobCancelledError, JobTimeoutError
from ..models import Job
from ..operations.claims import Claimant, complete_and_claim_next
from ..operations.jobs import FailOutcome, JobError, complete_job, fail_job
from ..payload import normalize_payload
from ..results import build_result
from ..signals import send_task_signal
from ..tasks_registry import resolve_task
from .attempts import RunningAttempts
from .connections import drop_broken_connections

logger = logging.getLogger("dj_queue")


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    alias: str
    process_id: int
    preserve_finished_jobs: bool
    # True once the worker is shutting down: recording an outcome stops retrying.
    stopping: Callable[[], bool]
    # With a claimant, a success is recorded together with the claim of the
    # thread's next job whenever ``claim_next()`` says more work is likely.
    claimant: Claimant | None = None
    claim_next: Callable[[], bool] = lambda: False
    # Where its worker watches each attempt (for timeouts and cancel requests).
    attempts: RunningAttempts | None = None
    # With a hand-over, outcomes go to the worker, which records them in
    # batches and sends ``task_finished`` once they are committed.
    hand_over: Callable[[Outcome], None] | None = None


@dataclass(eq=False, slots=True)
class Outcome:
    """A finished attempt, on its way to be recorded: a success (its return
    value) or a failure (``exception``)."""

    job: Job
    task_result: TaskResult | None = None
    sender: type | None = None
    return_value: Any = None
    exception: BaseException | None = None
    backoff: retries.Backoff | None = None


def execute_job(job: Job, context: ExecutionContext) -> Job | None:
    """Run ``job``'s task and record the outcome; never raises for the job's sake.
    Returns the next job claimed along with the outcome, if one was."""
    try:
        try:
            task = resolve_task(job.task_path)
            task_result = build_result(job, TaskResultStatus.RUNNING, task)
        except BaseException as exc:
            # A row that names no task, or holds what no task can take, fails
            # the job, never the worker (a task module calling sys.exit() included).
            logger.error("job %s (%s) cannot run: %s", job.id, job.task_path, exc)
            if context.hand_over is not None:
                context.hand_over(Outcome(job, exception=exc))
            else:
                _finish_failed(context, job, None, None, exc, None)
            return None
        sender = type(task.get_backend())
        send_task_signal(task_started, sender, task_result)
        try:
            return_value = normalize_payload(
                _watched_call(context, job, task, task_result), "return value"
            )
        except BaseException as exc:  # the task's own SystemExit fails its job too
            if _settled_by_worker(context, job, exc):
                return None
            if context.hand_over is not None:
                context.hand_over(Outcome(job, task_result, sender, None, exc, _backoff(task)))
            else:
                _finish_failed(context, job, task_result, sender, exc, task)
            return None
        if _settled_by_worker(context, job, None):
            return None
        if context.hand_over is not None:
            context.hand_over(Outcome(job, task_result, sender, return_value))
            return None
        try:
            next_job = _complete(context, job, return_value)
        except DatabaseError as exc:  # the database refused to store the value
            _finish_failed(context, job, task_result, sender, exc, task)
            return None
        report_success(task_result, sender, return_value)
        return next_job
    finally:
        drop_broken_connections()


def _complete(context: ExecutionContext, job: Job, return_value: Any) -> Job | None:
    preserve = context.preserve_finished_jobs
    limit = ConcurrencyLimit.of_job(job)
    if context.claimant is not None and context.claim_next():
        claimant = context.claimant
        outcome = _record(
            context,
            lambda: complete_and_claim_next(
                context.alias,
                claimant,
                job_id=job.id,
                return_value=return_value,
                preserve=preserve,
                limit=limit,
            ),
        )
        completed, next_job = outcome if outcome is not None else (True, None)
    else:
        next_job = None
        completed = _record(
            context,
            lambda: complete_job(
                context.alias,
                job.id,
                context.process_id,
                return_value,
                preserve=preserve,
                limit=limit,
            ),
        ) in (True, None)
    if not completed:
        claim_lost(job)
    return next_job


def report_success(task_result: TaskResult, sender: type, return_value: Any) -> None:
    """Once a success is recorded: the result says so, ``task_finished`` is sent."""
    _mark(task_result, TaskResultStatus.SUCCESSFUL)
    object.__setattr__(task_result, "_return_value", return_value)
    send_task_signal(task_finished, sender, task_result)


def report_failure(
    job: Job,
    exc: BaseException,
    error: JobError,
    outcome: FailOutcome | None,
    task_result: TaskResult | None,
    sender: type | None,
) -> None:
    """Once a failed attempt is recorded: log where it left the job, and for a
    final failure mark the result and send ``task_finished``. Called inside an
    ``except`` block for ``exc``: Django's log receiver for ``task_finished``
    reads the active exception."""
    if outcome is None:
        if isinstance(exc, JobTimeoutError | JobCancelledError):
            # The worker recorded the outcome itself and stopped the attempt.
            reason = "its timeout" if isinstance(exc, JobTimeoutError) else "its cancel"
            logger.info("job %s stopped after %s", job.id, reason)
        else:
            claim_lost(job)
    elif outcome is FailOutcome.RETRYING:
        logger.info(
            "job %s (%s) failed attempt %d; retrying",
            job.id,
            job.task_path,
            len(job.worker_ids) if isinstance(job.worker_ids, list) else 0,
        )
    if outcome is not FailOutcome.FAILED or task_result is None or sender is None:
        return
    _mark(task_result, TaskResultStatus.FAILED)
    task_result.errors.append(
        TaskError(exception_class_path=error.exception_class_path, traceback=error.traceback)
    )
    send_task_signal(task_finished, sender, task_result)


def claim_lost(job: Job) -> None:
    logger.warning(
        "job %s: its claim was taken back before it finished (its process was presumed "
        "dead); the outcome was not recorded",
        job.id,
    )


def _fail(
    context: ExecutionContext, job: Job, exc: BaseException, task: Task | None = None
) -> tuple[JobError, FailOutcome | None]:
    """Record the failed attempt: retried or failed, as the job's policy says."""
    error = JobError.from_exception(exc)
    limit = ConcurrencyLimit.of_job(job)
    backoff = _backoff(task)
    outcome = _record(
        context,
        lambda: fail_job(
            context.alias, job.id, context.process_id, error, limit=limit, backoff=backoff
        ),
    )
    return error, outcome


def _backoff(task: Task | None) -> retries.Backoff | None:
    if task is None:
        return None
    try:
        return retries.options_for(task).backoff_function
    except Exception:  # a declaration changed since the job was enqueued
        return None


def _finish_failed(
    context: ExecutionContext,
    job: Job,
    task_result: TaskResult | None,
    sender: type | None,
    exc: BaseException,
    task: Task | None,
) -> None:
    """Record a failed attempt and report it; called inside the ``except``
    block that caught ``exc``. ``task_finished`` is sent for the final outcome
    only: not for an attempt that is retried, nor for one whose outcome
    another process settled."""
    error, outcome = _fail(context, job, exc, task)
    report_failure(job, exc, error, outcome, task_result, sender)


def _settled_by_worker(context: ExecutionContext, job: Job, exc: BaseException | None) -> bool:
    """Whether the worker already recorded this attempt's outcome (it stopped
    the attempt at its timeout or cancel); its own outcome is then dropped."""
    if context.attempts is None or not context.attempts.settled_by_worker(job):
        return False
    reason = "its cancel" if isinstance(exc, JobCancelledError) else "its timeout"
    logger.info("job %s stopped after %s", job.id, reason)
    return True


def _watched_call(context: ExecutionContext, job: Job, task: Task, task_result: TaskResult) -> Any:
    if context.attempts is None:
        return _call(task, task_result)
    with context.attempts.watch(job):
        return _call(task, task_result)


def _call(task: Task, task_result: TaskResult) -> Any:
    if task.takes_context:
        return task.call(
            TaskContext(task_result=task_result), *task_result.args, **task_result.kwargs
        )
    return task.call(*task_result.args, **task_result.kwargs)


def _mark(task_result: TaskResult, status: TaskResultStatus) -> None:
    object.__setattr__(task_result, "status", status)
    object.__setattr__(task_result, "finished_at", timezone.now())


def _record[T](context: ExecutionContext, write: Callable[[], T]) -> T | None:
    """Write a job's outcome, retrying while the database is unreachable.

    Giving up would leave the job claimed forever, so this keeps trying while
    the worker lives; once it is stopping, it returns None and leaves the claim
    to deregistration (or, if the process dies, to pruning), which fails the
    job. Any other database error (the database refusing the data) goes to the
    caller.
    """
    delay = 0.1
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            drop_broken_connections()
            # An open connection that answers means the database is there and
            # refused this write (MySQL reports some bad data as OperationalError).
            if connections[context.alias].connection is not None and not get_driver(
                context.alias
            ).is_transient(exc):
                raise
            if context.stopping():
                logger.error("could not record a job's outcome: %s", exc)
                return None
            logger.warning("recording a job's outcome failed (%s); retrying", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
