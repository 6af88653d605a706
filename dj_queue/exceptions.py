"""Exceptions raised by dj_queue.

The names of the errors recorded on failed jobs are part of the contract: a retry
policy, an operator or a dashboard recognises them by their class path.
"""

from django.core.exceptions import ImproperlyConfigured
from django.tasks.exceptions import InvalidTask


class DjQueueError(Exception):
    """Base class for dj_queue's own errors."""


class ConfigurationError(ImproperlyConfigured):
    """A setting, option, environment variable or CLI flag is invalid."""


class InvalidRecurringTask(ConfigurationError):
    """A recurring task's definition (key, schedule, task, arguments) is invalid."""


class InvalidPayload(TypeError):
    """Task arguments or a return value do not survive a JSON round trip."""


class TaskNotResolvable(InvalidTask):
    """A stored task path does not name a ``django.tasks.Task``."""


class JobStateError(DjQueueError):
    """An operation was asked of a job that is not in the state it needs."""


class ProcessExitError(DjQueueError):
    """Recorded on a job whose runtime process stopped or died while running it."""


class ProcessPrunedError(ProcessExitError):
    """Recorded on a job whose process stopped heartbeating and was pruned."""


class JobTimeoutError(DjQueueError):
    """Recorded on a job whose attempt ran past its task's ``timeout``; raised in
    the attempt's thread to stop it."""


class JobCancelledError(DjQueueError):
    """Recorded on a job that was cancelled; raised in a running job's thread to
    stop it. A cancelled job is never retried."""
