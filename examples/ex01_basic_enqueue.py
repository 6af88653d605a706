"""ex01 — enqueue a task, let a worker run it, read its result.

The smallest round trip: ``add.enqueue(3, 7)`` writes a job row; the runtime
(``manage.py dj_queue``, started here as a subprocess) claims it and runs it;
any process reads the outcome back with ``get_result``.

    python examples/ex01_basic_enqueue.py
"""

import _support as example

example.configure()

from django.tasks import task  # noqa: E402


@task
def add(a, b):
    return a + b


def main():
    result = add.enqueue(3, 7)
    example.say(f"enqueued add(3, 7) as job {result.id}: {result.status.value}")

    with example.runtime():
        done = example.wait(result)

    example.say(f"add(3, 7) -> {done.return_value} ({done.status.value}, {done.attempts} attempt)")
    example.check(done.return_value == 10, "add(3, 7) should return 10")


if __name__ == "__main__":
    example.run(main)
