"""ex21 — queue control with QueueInfo: size, latency, pause(), resume(), clear().

While the runtime runs, the "orders" queue is paused: its new jobs wait (its size
and latency grow) while the "emails" queue keeps running. resume() lets them
run; clear() discards the jobs waiting in a queue for good.

    python examples/ex21_advanced_queue_control.py
"""

import _support as example

example.configure()

from django.tasks import task  # noqa: E402
from django.tasks.exceptions import TaskResultDoesNotExist  # noqa: E402

from dj_queue.api import QueueInfo  # noqa: E402


@task(queue_name="orders")
def ship_order(order_id):
    return f"shipped {order_id}"


@task(queue_name="emails")
def send_email(to):
    return f"sent to {to}"


def show(queue):
    figures = queue.figures()  # size, blocked, latency and paused, read together
    example.say(
        f"  {queue.name}: size={figures['size']} latency={figures['latency']:.2f}s "
        f"paused={figures['paused']}"
    )


def exists(result):
    try:
        result.task.get_backend().get_result(result.id)
    except TaskResultDoesNotExist:
        return False
    return True


def main():
    orders, emails = QueueInfo("orders"), QueueInfo("emails")
    with example.runtime():
        orders.pause()
        example.say("paused 'orders'; enqueueing goes on")
        shipments = [ship_order.enqueue(n) for n in (101, 102, 103)]
        email = example.wait(send_email.enqueue("ada@example.com"))
        example.say(f"send_email -> {email.return_value!r}: 'emails' keeps running")
        show(emails)
        show(orders)
        first_latency = orders.latency
        example.wait_until(lambda: orders.latency > first_latency + 0.5, what="latency to grow")
        show(orders)
        statuses = {ship_order.get_backend().get_result(r.id).status.value for r in shipments}
        example.check(statuses == {"READY"}, f"paused jobs should wait, got {statuses}")
        example.check(orders.size == 3 and orders.paused, "orders should hold 3 paused jobs")

        orders.resume()
        shipped = example.wait_all(shipments)
        example.say(f"resumed 'orders': {[r.return_value for r in shipped]}")
        show(orders)
        example.check(orders.size == 0 and orders.latency == 0.0, "resumed queue should drain")

        orders.pause()
        doomed = [ship_order.enqueue(n) for n in (201, 202)]
        example.say(
            f"paused again, {orders.size} new jobs wait; QueueInfo.all(): "
            f"{[queue.name for queue in QueueInfo.all()]}"
        )
        cleared = orders.clear()
        orders.resume()
        example.say(
            f"clear() -> {cleared}; get_result of a cleared job raises TaskResultDoesNotExist"
        )

    example.check(cleared == 2 and not any(map(exists, doomed)), "clear() should discard 2 jobs")
    example.check(orders.size == 0 and not orders.paused, "orders should be empty and resumed")
    example.say(
        f"paused orders waited, then ran: {len(shipped)} shipped; "
        f"clear() discarded {cleared} waiting jobs"
    )


if __name__ == "__main__":
    example.run(main)
