"""Sending ``django.tasks`` signals without letting a receiver change an outcome."""

import logging
from typing import Any

from django.dispatch import Signal
from django.tasks import TaskResult

logger = logging.getLogger("dj_queue")


def send_task_signal(signal: Signal, sender: type, task_result: TaskResult) -> None:
    """Send ``signal``; a receiver that raises is logged, never propagated.

    A job's outcome is what its task did: a failing ``task_finished`` receiver
    must not turn a success into a failure, nor stop a worker or an enqueue.
    """
    for receiver, response in signal.send_robust(sender, task_result=task_result):
        if isinstance(response, BaseException):
            logger.error(
                "signal receiver %r raised for task result %s",
                receiver,
                task_result.id,
                exc_info=response,
            )


def send_finished_signal(backend_alias: str, job_id: Any) -> None:
    """Send ``task_finished`` for a job whose final outcome was recorded away from
    the thread that ran it (a timeout settled by its worker's loop)."""
    from django.tasks import task_backends
    from django.tasks.signals import task_finished

    backend = task_backends[backend_alias]
    try:
        result = backend.get_result(str(job_id))
    except Exception:
        logger.exception("cannot read job %s to send task_finished", job_id)
        return
    send_task_signal(task_finished, type(backend), result)
