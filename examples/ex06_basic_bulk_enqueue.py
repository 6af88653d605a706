"""ex06 — many jobs in one transaction with ``backend.enqueue_all``.

``enqueue_all([(task, args, kwargs), ...])`` validates every call, then writes
all the jobs in one transaction and returns one TaskResult per call, in order.
One invalid call rejects the whole batch, and nothing is written. The runtime
then runs all 200 jobs.

    python examples/ex06_basic_bulk_enqueue.py
"""

import time

import _support as example

example.configure()

from django.tasks import task  # noqa: E402

from dj_queue.exceptions import InvalidPayload  # noqa: E402
from dj_queue.models import Job  # noqa: E402

COUNT = 200


@task
def square(n, *, offset=0):
    return n * n + offset


def main():
    backend = square.get_backend()

    bad_batch = [(square, [n], {}) for n in range(10)] + [(square, [{1, 2}], {})]
    try:
        backend.enqueue_all(bad_batch)
    except InvalidPayload as exc:
        example.say(f"a batch with one bad call is refused: {exc}")
    else:
        example.check(False, "a batch with a set argument should be refused")
    example.check(Job.objects.count() == 0, "a refused batch writes nothing")

    started = time.monotonic()
    results = backend.enqueue_all([(square, [n], {"offset": 1}) for n in range(COUNT)])
    elapsed = time.monotonic() - started
    example.say(f"enqueue_all wrote {len(results)} jobs in {elapsed * 1000:.0f} ms")
    example.check(len(results) == COUNT == Job.objects.count(), "one job per call")
    example.check(len({r.id for r in results}) == COUNT, "every job has its own id")
    example.check(all(r.status.value == "READY" for r in results), "all READY")
    example.check([r.args for r in results] == [[n] for n in range(COUNT)], "results in order")

    with example.runtime():
        done = example.wait_all(results, timeout=30)

    values = [result.return_value for result in done]
    example.check(values == [n * n + 1 for n in range(COUNT)], "every job ran with its arguments")
    example.check(all(r.status.value == "SUCCESSFUL" for r in done), "all SUCCESSFUL")
    example.say(f"first: square(0) -> {values[0]}, last: square({COUNT - 1}) -> {values[-1]}")
    example.say(f"{len(done)} of {COUNT} bulk-enqueued jobs SUCCESSFUL")


if __name__ == "__main__":
    example.run(main)
