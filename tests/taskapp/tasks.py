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


# -- retries and timeouts --------------------------------------------------------


@task(takes_context=True)
def flaky(context: TaskContext, failures):
    """Fails its first ``failures`` attempts, then returns the attempt number."""
    if context.attempt <= failures:
        raise ValueError(f"attempt {context.attempt} fails")
    return context.attempt


flaky.func.max_attempts = 3
flaky.func.retry_delay = 0


@task
def picky(kind):
    """Retried for ValueError only."""
    raise {"value": ValueError, "type": TypeError}[kind](kind)


picky.func.max_attempts = 3
picky.func.retry_delay = 0
picky.func.retry_on = [ValueError]


@task(takes_context=True)
def crash_once(context: TaskContext, marker):
    """Attempt 1 writes its pid to ``marker`` and waits to be killed; later ones return."""
    import os

    if context.attempt == 1:
        with open(marker, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(60)
    return context.attempt


crash_once.func.max_attempts = 2
crash_once.func.retry_delay = 0


@task(takes_context=True)
def finish_then_die(context: TaskContext, marker):
    """Attempt 1 writes its pid to ``marker`` and returns at once, so that its
    outcome waits in its worker's batch when the test kills the worker."""
    import os

    if context.attempt == 1:
        with open(marker, "w") as out:
            out.write(str(os.getpid()))
    return context.attempt


finish_then_die.func.max_attempts = 2
finish_then_die.func.retry_delay = 0


@task(takes_context=True)
def crash_never_retried(context: TaskContext, marker):
    import os

    with open(marker, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)
    return context.attempt


crash_never_retried.func.max_attempts = 2
crash_never_retried.func.retry_delay = 0
crash_never_retried.func.retry_on = [ValueError]


@task
def overrun(seconds):
    """Blocks in one C call (time.sleep): no exception reaches it before it returns."""
    time.sleep(seconds)
    return "finished anyway"


overrun.func.timeout = 1


@task
def overrun_in_python(seconds):
    """Runs Python code throughout: an exception raised in its thread stops it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "finished anyway"


overrun_in_python.func.timeout = 1


def linear_backoff(attempt, exception):
    return 0.1 * attempt


@task(takes_context=True)
def with_backoff(context: TaskContext):
    if context.attempt < 3:
        raise ValueError("again")
    return context.attempt


with_backoff.func.max_attempts = 3
with_backoff.func.retry_backoff = "tests.taskapp.tasks.linear_backoff"


def _logged_overrun(key, n, seconds, ledger):
    """Like _logged_run, in Python code throughout (so a timeout's exception
    stops it) and logging its end however it ends."""
    import os

    with open(ledger, "a") as out:
        out.write(f"start {key} {n} {time.time_ns()} {os.getpid()}\n")
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        with open(ledger, "a") as out:
            out.write(f"end {key} {n} {time.time_ns()} {os.getpid()}\n")


@task(takes_context=True)
def limited_flaky(context: TaskContext, key, n, seconds, ledger):
    """Limited to one per key; the first attempt overruns its timeout, the
    second fails, the third succeeds."""
    if context.attempt == 1:
        _logged_overrun(key, n, 3, ledger)
    _logged_run(key, n, seconds, ledger)
    if context.attempt == 2:
        raise ValueError("second attempt fails")
    return n


limited_flaky.func.concurrency_key = "flaky:{key}"
limited_flaky.func.max_attempts = 3
limited_flaky.func.retry_delay = 0
limited_flaky.func.timeout = 1
MARKER = "not callable"


# -- cancellation --------------------------------------------------------------


@task
def long_running(seconds):
    """Python code throughout, retried if it fails: a cancel must still end it for good."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "ran to the end"


long_running.func.max_attempts = 3
long_running.func.retry_delay = 0


@task
def long_sleep(seconds):
    """Blocked in one C call: a cancel reaches it only when the call returns."""
    time.sleep(seconds)
    return "ran to the end"


# -- unique jobs -----------------------------------------------------------------


@task
def report_once(report_id, fmt="pdf"):
    return f"{report_id}.{fmt}"


report_once.func.unique_key = "report:{report_id}"


@task
def same_call(x, y=0):
    return x + y


same_call.func.unique_key = True


@task
def digest_once(day):
    return day


digest_once.func.unique_key = "digest:{day}"
digest_once.func.unique_for = 60


@task(takes_context=True)
def unique_flaky(context: TaskContext, key):
    if context.attempt == 1:
        raise ValueError("first attempt fails")
    return key


unique_flaky.func.unique_key = "flaky:{key}"
unique_flaky.func.max_attempts = 2
unique_flaky.func.retry_delay = 0
