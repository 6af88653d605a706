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


# -- concurrency limits --------------------------------------------------------


@task
def sync_account(account_id, action="sync"):
    return f"{account_id}:{action}"


# The spec's form: attributes of the wrapped function, set after @task.
sync_account.func.concurrency_key = "account:{account_id}"
sync_account.func.concurrency_limit = 1
sync_account.func.concurrency_duration = 60
sync_account.func.on_conflict = "block"


@task
def refresh_report(name):
    return name


refresh_report.func.concurrency_key = "report:{name}"
refresh_report.func.on_conflict = "discard"


# Django 6.1's form: @task keyword arguments, carried by DjQueueTask.
@task(concurrency_key="pair:{group}", concurrency_limit=2, concurrency_duration=30)
def paired(group, n=0):
    return n


def _logged_run(key, n, seconds, ledger):
    """Appends its start and end (wall-clock ns, pid) to the ledger file: one
    short line per write, appended atomically by the OS across processes."""
    import os

    with open(ledger, "a") as out:
        out.write(f"start {key} {n} {time.time_ns()} {os.getpid()}\n")
    time.sleep(seconds)
    with open(ledger, "a") as out:
        out.write(f"end {key} {n} {time.time_ns()} {os.getpid()}\n")
    return n


@task
def ledger_run(key, n, seconds, ledger):
    return _logged_run(key, n, seconds, ledger)


ledger_run.func.concurrency_key = "ledger:{key}"
ledger_run.func.concurrency_limit = 2


@task
def ledger_single(key, n, seconds, ledger):
    return _logged_run(key, n, seconds, ledger)


ledger_single.func.concurrency_key = "single:{key}"


@task
def ledger_singleton(key, n, seconds, ledger):
    return _logged_run(key, n, seconds, ledger)


ledger_singleton.func.concurrency_key = "singleton:{key}"
ledger_singleton.func.on_conflict = "discard"


@task
def slow_exclusive(key, n, seconds, ledger):
    """Holds its key's one slot for only 2 s: longer runs outlive their slot."""
    return _logged_run(key, n, seconds, ledger)


slow_exclusive.func.concurrency_key = "slow:{key}"
slow_exclusive.func.concurrency_duration = 2


@task(concurrency_key="acct:{account_id}:{action}")
def with_default_action(account_id, action="sync"):
    return account_id


@task
def late_declared(account_id):
    """Its tests set (bad) concurrency attributes on it after @task ran."""
    return account_id


@task
def report_pid():
    """Which process ran the job: the embedded-server tests check it is the server."""
    import os

    return os.getpid()
