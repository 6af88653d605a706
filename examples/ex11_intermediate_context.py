"""ex11 — ``@task(takes_context=True)``: a task that knows its own job and attempt.

The worker passes a ``TaskContext`` first: ``context.task_result.id`` is the
job's id and ``context.attempt`` counts attempts. Here attempt 1 fails; after
``retry_failed_job`` a second runtime runs attempt 2, and ``worker_ids`` holds
the worker of each attempt.

    python examples/ex11_intermediate_context.py
"""

import _support as example

example.configure()

import json  # noqa: E402

from django.tasks import task  # noqa: E402

from dj_queue.operations.jobs import retry_failed_job  # noqa: E402


@task(takes_context=True)
def rebuild_index(context, index):
    seen = {
        "job_id": context.task_result.id,
        "attempt": context.attempt,
        "worker": context.task_result.worker_ids[-1],
    }
    with (example.workdir() / "seen.jsonl").open("a") as log:
        log.write(json.dumps(seen) + "\n")
    if context.attempt == 1:
        raise TimeoutError(f"index {index!r} was locked")
    return seen


def main():
    result = rebuild_index.enqueue("products")
    example.say(f"enqueued rebuild_index('products') as job {result.id}")

    with example.runtime(name="runtime-1"):
        first = example.wait(result)
    seen_lines = (example.workdir() / "seen.jsonl").read_text().splitlines()
    seen = [json.loads(line) for line in seen_lines]
    example.say(f"attempt 1 saw {seen[0]} -> {first.status.value}")
    example.check(first.status.value == "FAILED", "attempt 1 should fail")
    example.check(seen[0]["job_id"] == result.id, "the task should see its own job id")
    example.check(seen[0]["attempt"] == 1, "first attempt is attempt 1")

    retry_failed_job(result.id)
    example.say("retry_failed_job: the job is back in its queue")
    with example.runtime(name="runtime-2"):
        second = example.wait(result)

    example.check(second.status.value == "SUCCESSFUL", "attempt 2 should succeed")
    returned = second.return_value
    example.say(f"attempt 2 returned {returned}")
    example.check(returned["job_id"] == result.id and returned["attempt"] == 2, "attempt 2")
    example.check(second.worker_ids == [seen[0]["worker"], returned["worker"]], "worker_ids")
    example.check(second.worker_ids[0] != second.worker_ids[1], "two runtimes, two workers")
    example.say(
        f"job {result.id[:8]}...: attempt 1 on {second.worker_ids[0]} FAILED, "
        f"attempt 2 on {second.worker_ids[1]} {second.status.value}"
    )


if __name__ == "__main__":
    example.run(main)
