"""Tasks the test suite enqueues and runs."""

import time

from django.tasks import TaskContext, task


@task
def add(a, b):
    return a + b


@task
def noop():
    return None


@task
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message="boom"):
    raise ValueError(message)


@task
def exit_task():
    raise SystemExit(3)


@task
def bad_return():
    return {1, 2, 3}


@task
def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


@task(takes_context=True)
def with_context(context: TaskContext, value):
    return {"attempt": context.attempt, "id": context.task_result.id, "value": value}


@task(queue_name="email", priority=10)
def send_email(address):
    return f"sent to {address}"


@task
async def async_add(a, b):
    return a + b


not_a_task = add.func
