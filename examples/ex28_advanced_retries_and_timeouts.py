"""ex28 — automatic retries with backoff, crashed jobs retried, and timeouts.

``fetch_rates`` fails twice, then succeeds: with ``max_attempts = 3`` the
runtime retries it on its own after a short backoff, and its result keeps
every attempt's error. ``render`` runs past its ``timeout`` of 1 s: its worker
records JobTimeoutError, stops the code, and (fork mode) is replaced by a
fresh worker that goes on serving.

    python examples/ex28_advanced_retries_and_timeouts.py
"""

import time

import _support as example

example.configure()

from django.tasks import task  # noqa: E402

from dj_queue.models import Process  # noqa: E402


@task(takes_context=True)
def fetch_rates(context, currency):
    if context.attempt < 3:
        raise ConnectionError(f"rates service unreachable (attempt {context.attempt})")
    return {"currency": currency, "rate": 1.08, "attempt": context.attempt}


fetch_rates.func.max_attempts = 3
fetch_rates.func.retry_delay = 0.2  # then 0.4 s: doubling, with jitter
fetch_rates.func.retry_on = [ConnectionError]


@task
def render(pages):
    deadline = time.monotonic() + pages
    while time.monotonic() < deadline:  # Python code: the timeout's exception stops it
        time.sleep(0.01)
    return pages


render.func.timeout = 1


def workers(node):
    return {p.pid for p in Process.objects.filter(kind="worker", supervisor__pid=node.pid)}


def main():
    with example.runtime() as node:
        rates = example.wait(fetch_rates.enqueue("EUR"))
        example.say(f"fetch_rates('EUR') -> {rates.status.value} on attempt {rates.attempts}")
        for number, error in enumerate(rates.errors, start=1):
            example.say(f"  attempt {number} failed: {error.traceback.strip().splitlines()[-1]}")
        example.check(rates.attempts == 3 and len(rates.errors) == 2, "three attempts, two errors")

        before = workers(node)
        started = time.monotonic()
        slow = example.wait(render.enqueue(30))
        took = time.monotonic() - started
        error = slow.errors[-1]
        example.say(
            f"render(30) -> {slow.status.value} after {took:.1f}s: {error.exception_class_path}"
        )
        example.check(
            error.exception_class_path == "dj_queue.exceptions.JobTimeoutError", "timeout"
        )
        replaced = example.wait_until(
            lambda: (after := workers(node)) and not after & before and after,
            what="a fresh worker in place of the one that ran render",
        )
        example.say(f"worker {sorted(before)} retired, {sorted(replaced)} took its place")
        later = example.wait(render.enqueue(0))
        example.check(later.return_value == 0, "the new worker serves")
    example.say(
        f"retried to success on attempt {rates.attempts}; the overrun stopped at its "
        f"timeout in {took:.1f}s and the next job ran"
    )


if __name__ == "__main__":
    example.run(main)
