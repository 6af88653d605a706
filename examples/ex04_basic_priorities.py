"""ex04 — priorities: higher first, then the older job.

Six jobs with priorities from -10 to 50 are enqueued before the runtime
starts; a single worker thread then runs them one at a time. Each job appends
its name to a file, so the file holds the execution order: by priority, highest
first, and jobs of equal priority in the order they were enqueued.

    python examples/ex04_basic_priorities.py
"""

import _support as example

# One worker with one thread: jobs run strictly one after another.
example.configure(options={"workers": [{"queues": ["*"], "threads": 1, "polling_interval": 0.1}]})

from django.tasks import task  # noqa: E402

ENQUEUED = [  # (name, priority), in enqueue order
    ("low-1", -10),
    ("normal-1", 0),
    ("urgent", 50),
    ("normal-2", 0),
    ("high", 10),
    ("low-2", -10),
]


@task
def record(name):
    with (example.workdir() / "order.txt").open("a") as log:
        log.write(name + "\n")
    return name


def main():
    results = [record.using(priority=priority).enqueue(name) for name, priority in ENQUEUED]
    example.say("enqueued: " + ", ".join(f"{name} ({priority:+d})" for name, priority in ENQUEUED))

    with example.runtime():
        done = example.wait_all(results)

    ran = (example.workdir() / "order.txt").read_text().split()
    # Higher priority first; ties keep enqueue order (sorted() is stable).
    expected = [name for name, _ in sorted(ENQUEUED, key=lambda item: -item[1])]
    by_name = {result.return_value: result for result in done}
    for name in ran:
        result = by_name[name]
        example.say(
            f"  {result.started_at:%H:%M:%S.%f}  priority {result.task.priority:+3d}  {name}"
        )
    # started_at is when a job was claimed: jobs claimed together share it.
    started = [by_name[name].started_at for name in ran]
    example.check(started == sorted(started), "started_at never goes back in run order")
    example.check(ran == expected, f"ran in {ran}, expected {expected}")
    example.say("execution order: " + " > ".join(ran))


if __name__ == "__main__":
    example.run(main)
