"""Sending ``django.tasks`` signals without letting a receiver change an outcome."""

import logging

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
