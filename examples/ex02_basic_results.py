"""ex02 — a TaskResult over a job's life: READY, RUNNING, SUCCESSFUL.

The task waits for a file to appear, so the example can read the job while it
runs; then it creates the file and reads the finished result: every field is
filled. ``result.refresh()`` reloads a result in place, and an unknown id
raises ``TaskResultDoesNotExist``.

    python examples/ex02_basic_results.py
"""

import time

import _support as example

example.configure()

from django.tasks import TaskResultStatus, task  # noqa: E402
from django.tasks.exceptions import TaskResultDoesNotExist  # noqa: E402


@task
def wait_for_release(name):
    """Runs until ``<workdir>/<name>`` exists, then returns what it says."""
    path = example.workdir() / name
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return {"released_by": path.read_text()}


def show(label, result):
    example.say(
        f"{label:<11} status={result.status.value:<10} attempts={result.attempts} "
        f"worker_ids={result.worker_ids}"
    )


def main():
    result = wait_for_release.enqueue("release.txt")
    backend = wait_for_release.get_backend()
    show("enqueued", result)
    example.check(result.status == TaskResultStatus.READY, "a new job is READY")
    example.check(result.started_at is None and result.worker_ids == [], "not started yet")
    result.refresh()
    example.check(result.status == TaskResultStatus.READY, "still READY with no runtime")

    with example.runtime():

        def is_running():
            fresh = backend.get_result(result.id)
            return fresh if fresh.status == TaskResultStatus.RUNNING else None

        running = example.wait_until(is_running, what="the job to be RUNNING")
        show("running", running)
        example.check(running.started_at is not None, "a RUNNING job has started_at")
        example.check(running.finished_at is None, "a RUNNING job has no finished_at")
        example.check(running.attempts == 1, "one attempt so far")

        (example.workdir() / "release.txt").write_text("main()")
        done = example.wait(result)

    show("finished", done)
    for name in ("enqueued_at", "started_at", "last_attempted_at", "finished_at"):
        example.say(f"  {name:<18} {getattr(done, name).isoformat()}")
    example.check(done.status == TaskResultStatus.SUCCESSFUL, "the job succeeded")
    example.check(
        done.enqueued_at <= done.started_at <= done.last_attempted_at <= done.finished_at,
        "enqueued_at <= started_at <= last_attempted_at <= finished_at",
    )
    example.check(done.worker_ids == running.worker_ids, "the same worker ran it")
    example.check(done.errors == [], "no errors")

    result.refresh()  # the result enqueue() returned, reloaded in place
    example.check(result.status == TaskResultStatus.SUCCESSFUL, "refresh() sees SUCCESSFUL")
    example.check(result.finished_at == done.finished_at, "refresh() loads every field")

    for unknown in ("0190a6e4-0000-7000-8000-000000000000", "not-a-job-id"):
        try:
            backend.get_result(unknown)
        except TaskResultDoesNotExist:
            example.say(f"get_result({unknown!r}) raises TaskResultDoesNotExist")
        else:
            example.check(False, f"get_result({unknown!r}) should raise")

    example.say(
        f"refreshed result: {result.status.value}, return_value={result.return_value}, "
        f"attempts={result.attempts}"
    )
    example.check(result.return_value == {"released_by": "main()"}, "the return value is stored")


if __name__ == "__main__":
    example.run(main)
