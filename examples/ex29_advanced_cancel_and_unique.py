"""ex29 — cancelling jobs, and unique jobs that cannot be enqueued twice.

``rebuild_index`` declares ``unique_key = "index:{name}"``: enqueueing it again
while the first call waits or runs returns the first job. ``cancel_job`` takes
a waiting job out of its queue at once; a running one is asked to stop, and
the worker holding it stops it within a polling interval. Either ends FAILED
with JobCancelledError, and frees the unique key.

    python examples/ex29_advanced_cancel_and_unique.py
"""

import time

import _support as example

example.configure()

from django.tasks import task  # noqa: E402

from dj_queue.api import cancel_job  # noqa: E402


@task
def rebuild_index(name):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a long rebuild, in steps
        time.sleep(0.01)
    return f"{name} rebuilt"


rebuild_index.func.unique_key = "index:{name}"


@task
def send_newsletter(issue):
    return f"issue {issue} sent"


def main():
    first = rebuild_index.enqueue("products")
    again = rebuild_index.enqueue("products")
    same = "the same" if again.id == first.id else "different"
    example.say(f"enqueued rebuild_index('products') twice: {same} job id")
    example.check(again.id == first.id, "the duplicate returns the first job")

    waiting = send_newsletter.enqueue(42)
    example.say(f"cancel_job(newsletter 42) while it waits -> {cancel_job(waiting.id)}")
    waiting.refresh()
    example.check(waiting.status.value == "FAILED", "a waiting job is cancelled at once")

    with example.runtime():
        example.wait_until(
            lambda: first.refresh() or first.status.value == "RUNNING", what="the rebuild to run"
        )
        asked = time.monotonic()
        example.say(f"cancel_job(rebuild) while it runs -> {cancel_job(first.id)}")
        stopped = example.wait(first)
        took = time.monotonic() - asked
        error = stopped.errors[-1].exception_class_path
        example.say(f"rebuild_index('products') -> {stopped.status.value} ({error}) in {took:.2f}s")
        example.check(error == "dj_queue.exceptions.JobCancelledError", "cancelled")

        fresh = rebuild_index.enqueue("products")
        example.check(fresh.id != first.id, "the key is free again")
        cancel_job(fresh.id)
        example.say(f"cancel_job(finished job) -> {cancel_job(first.id)}")
    example.say(
        f"duplicate folded into the first job; the running one stopped {took:.2f}s after "
        "cancel_job, and its key was free again"
    )


if __name__ == "__main__":
    example.run(main)
