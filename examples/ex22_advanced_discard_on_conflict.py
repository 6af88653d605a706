"""ex22 — on_conflict="discard": a duplicate of a job whose key is busy is dropped.

``refresh_cache`` allows one job per tenant and discards the rest: while one
refresh holds the tenant's slot, enqueueing another returns a result that is
already SUCCESSFUL with 0 attempts and never runs. Once the slot is free, a new
enqueue runs as usual.

    python examples/ex22_advanced_discard_on_conflict.py
"""

import time

import _support as example

example.configure()

from django.tasks import task  # noqa: E402

from dj_queue.models import Semaphore  # noqa: E402


@task
def refresh_cache(tenant, hold=False):
    # With hold=True it keeps running, holding its slot, until main() creates "release".
    deadline = time.monotonic() + 15
    while hold and not (example.workdir() / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"refreshed {tenant}"


# On Django 6.1: @task(concurrency_key="refresh:{tenant}", on_conflict="discard").
refresh_cache.func.concurrency_key = "refresh:{tenant}"
refresh_cache.func.on_conflict = "discard"  # the limit is 1 by default


def describe(result):
    return (
        f"{result.status.value}, attempts={result.attempts}, "
        f"started_at={result.started_at}, return_value={result.return_value!r}"
    )


def main():
    backend = refresh_cache.get_backend()
    with example.runtime():
        first = refresh_cache.enqueue("acme", hold=True)
        example.wait_until(
            lambda: backend.get_result(first.id).status.value == "RUNNING", what="first to run"
        )
        slots = Semaphore.objects.get(key="refresh:acme").value
        example.say(f"refresh_cache('acme') is running; free slots of refresh:acme: {slots}")

        duplicate = refresh_cache.enqueue("acme")
        example.say(f"duplicate enqueue returned: {describe(duplicate)}")
        stored = backend.get_result(duplicate.id)
        example.say(f"get_result says the same:   {describe(stored)}")
        example.check(
            stored.status.value == "SUCCESSFUL" and stored.attempts == 0,
            "a discarded job should read SUCCESSFUL with 0 attempts",
        )
        example.check(stored.started_at is None and stored.return_value is None, "never ran")

        other = example.wait(refresh_cache.enqueue("globex"))
        example.say(f"refresh_cache('globex') has its own key: {other.return_value!r}")

        (example.workdir() / "release").touch()
        first = example.wait(first)
        slots = Semaphore.objects.get(key="refresh:acme").value
        example.say(f"first refresh finished: {first.return_value!r}; free slots: {slots}")
        example.check(slots == 1, "the finished job should have given its slot back")
        again = example.wait(refresh_cache.enqueue("acme"))

    example.check(again.status.value == "SUCCESSFUL" and again.attempts == 1, "should run")
    example.check(backend.get_result(duplicate.id).attempts == 0, "the duplicate never ran")
    example.say(
        f"after the slot freed: refresh_cache('acme') -> {again.return_value!r} "
        f"({again.attempts} attempt)"
    )


if __name__ == "__main__":
    example.run(main)
