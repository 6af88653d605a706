"""ex07 — enqueue a task only when your transaction commits.

``dj_queue.api.enqueue_on_commit(task, *args)`` inside ``transaction.atomic()``
enqueues nothing while the block runs: a block that rolls back enqueues
nothing at all, and a block that commits enqueues the job right after COMMIT.
A bad call still fails at once, in your code.

    python examples/ex07_basic_enqueue_on_commit.py
"""

import _support as example

example.configure()

from django.db import transaction  # noqa: E402
from django.tasks import task  # noqa: E402

from dj_queue.api import enqueue_on_commit  # noqa: E402
from dj_queue.exceptions import InvalidPayload  # noqa: E402
from dj_queue.models import Job  # noqa: E402


@task
def send_receipt(order_id):
    return f"receipt for order {order_id} sent"


class Rollback(Exception):
    pass


def main():
    with example.runtime():
        try:
            with transaction.atomic():
                enqueue_on_commit(send_receipt, 1)
                raise Rollback("payment declined")
        except Rollback:
            pass
        example.say(f"order 1: block rolled back -> {Job.objects.count()} job(s)")
        example.check(Job.objects.count() == 0, "a rolled-back block enqueues nothing")

        try:
            with transaction.atomic():
                enqueue_on_commit(send_receipt, {"not", "json"})
        except InvalidPayload as exc:
            example.say(f"a bad call fails at the call, not at commit: {exc}")
        else:
            example.check(False, "a set argument should be refused at the call")

        with transaction.atomic():
            enqueue_on_commit(send_receipt, 2)
            inside = Job.objects.count()
            example.say(f"order 2: inside the block -> {inside} job(s)")
            example.check(inside == 0, "nothing is enqueued before COMMIT")
        example.say(f"order 2: after COMMIT -> {Job.objects.count()} job(s)")
        example.check(Job.objects.count() == 1, "the committed block enqueued its job")

        job = Job.objects.get()
        done = example.wait(send_receipt.get_result(str(job.id)))

    example.check(done.args == [2], "the job is order 2's")
    example.say(f"committed enqueue_on_commit -> {done.return_value!r} ({done.status.value})")
    example.check(done.return_value == "receipt for order 2 sent", "the committed job ran")


if __name__ == "__main__":
    example.run(main)
