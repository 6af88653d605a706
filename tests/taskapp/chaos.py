"""Tasks of the chaos suite (tests/chaos): each run appends its start and its end
to the ledger named by DJ_QUEUE_CHAOS_LEDGER, so what really ran can be compared
with what the queue tables say, whatever the faults did to the processes."""

import time

from django.tasks import TaskContext, task

from tests.chaos.ledger import record


def _run(context: TaskContext, seconds: float, **extra: str) -> int:
    """The body of every chaos task: ledger the start, work, ledger the end."""
    record(context, "start", **extra)
    if seconds:
        time.sleep(seconds)
    record(context, "end", **extra)
    return context.attempt


@task(takes_context=True)
def chaos_step(context: TaskContext, seconds: float = 0.0) -> int:
    """A job that may run again after its process died."""
    return _run(context, seconds)


chaos_step.func.max_attempts = 50
chaos_step.func.retry_delay = 0.1
chaos_step.func.retry_max_delay = 0.5


@task(takes_context=True)
def chaos_once(context: TaskContext, seconds: float = 0.0) -> int:
    """A job that must never run twice: a process death fails it."""
    return _run(context, seconds)


chaos_once.func.max_attempts = 1


@task(
    takes_context=True,
    concurrency_key="chaos:{key}",
    concurrency_limit=2,
    concurrency_duration=120,
)
def chaos_limited(context: TaskContext, key: str, seconds: float = 0.0) -> int:
    """A job of a key that at most two jobs may run at a time."""
    return _run(context, seconds, key=key)


chaos_limited.func.max_attempts = 50
chaos_limited.func.retry_delay = 0.1
chaos_limited.func.retry_max_delay = 0.5


@task(takes_context=True)
def chaos_tick(context: TaskContext, key: str) -> None:
    """The target of the recurring schedules: the ledger names the job it ran."""
    _run(context, 0.0, key=key)
