"""ex09 — failed jobs: inspect the error, retry one, discard another.

A task that raises ends FAILED with its error (exception class path and full
traceback) in ``result.errors``. ``retry_failed_job`` sends it back to its queue,
its error history kept; ``discard_failed_job`` deletes a failed job for good.

    python examples/ex09_intermediate_failures.py
"""

import _support as example

example.configure()

from django.tasks import task  # noqa: E402
from django.tasks.exceptions import TaskResultDoesNotExist  # noqa: E402

from dj_queue.operations.jobs import discard_failed_job, retry_failed_job  # noqa: E402


@task(takes_context=True)
def charge_card(context, order_id):
    # The payment provider is down on the first try, back on the second.
    if context.attempt == 1:
        raise ConnectionError(f"payment provider unreachable for order {order_id}")
    return f"order {order_id} charged on attempt {context.attempt}"


@task
def import_feed(url):
    raise ValueError(f"{url} is not a feed")


def main():
    charge = charge_card.enqueue(42)
    feed = import_feed.enqueue("https://example.com/not-a-feed")
    example.say(f"enqueued charge_card(42) as {charge.id} and import_feed(...) as {feed.id}")

    with example.runtime():
        charge, feed = example.wait_all([charge, feed])
        example.check(charge.status.value == "FAILED", "charge_card should fail on attempt 1")
        example.check(feed.status.value == "FAILED", "import_feed should fail")
        error = charge.errors[0]
        example.say(f"charge_card: {charge.status.value} after {charge.attempts} attempt")
        example.say(f"  error class: {error.exception_class_path}")
        example.say(f"  traceback ends: {error.traceback.strip().splitlines()[-1]}")
        example.check(error.exception_class_path == "builtins.ConnectionError", "error class")
        example.check("raise ConnectionError" in error.traceback, "the traceback is recorded")

        discard_failed_job(feed.id)
        try:
            import_feed.get_result(feed.id)
            example.check(False, "a discarded job should be gone")
        except TaskResultDoesNotExist:
            example.say(f"discard_failed_job({feed.id}): the job is gone")

        retry_failed_job(charge.id)
        example.say(f"retry_failed_job({charge.id}): sent back to its queue")
        charge = example.wait(charge)

    example.check(charge.status.value == "SUCCESSFUL", "the retry should succeed")
    example.check(charge.attempts == 2, "two attempts in all")
    example.check(len(charge.errors) == 1, "the first attempt's error is kept")
    example.say(
        f"charge_card(42) retried -> {charge.return_value!r} "
        f"({charge.attempts} attempts, {len(charge.errors)} error kept)"
    )


if __name__ == "__main__":
    example.run(main)
