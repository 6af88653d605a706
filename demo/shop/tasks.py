"""The demo shop's background tasks.

The sleeps stand in for real I/O so that the progress lines show jobs running
side by side on the workers' threads.
"""

import time

from django.tasks import TaskContext, task
from django.utils import timezone

# The one order whose card is declined: its job is meant to fail.
DECLINED_ORDER_ID = 1002


@task(queue_name="email")
def send_welcome_email(address: str) -> str:
    time.sleep(0.1)
    return f"welcome email sent to {address}"


@task(queue_name="reports_monthly")
def render_report(month: str) -> dict[str, object]:
    time.sleep(1.0)
    return {"month": month, "orders": 1280, "revenue_eur": 51234.5}


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def resize_image(image_id: int, width: int) -> str:
    time.sleep(0.3)
    return f"img-{image_id}@{width}w.webp"


@task
def charge_card(order_id: int) -> str:
    time.sleep(0.1)
    if order_id == DECLINED_ORDER_ID:
        raise ValueError("card declined")
    return f"order {order_id} charged"


@task(takes_context=True)
def sync_inventory(context: TaskContext, sku: str) -> dict[str, object]:
    # The attempt number comes from the job's record, counted by the worker.
    return {"sku": sku, "attempt": context.attempt}


@task
def export_customer(customer_id: int, part: str) -> str:
    time.sleep(0.4)
    return f"customer {customer_id}: {part} exported"


# One export per customer at a time, whatever the number of workers: the others
# wait (blocked) and run in turn as each one finishes.
export_customer.func.concurrency_key = "customer:{customer_id}"
export_customer.func.concurrency_limit = 1


@task
def snapshot_metrics() -> str:
    # Fired by the scheduler on the cron schedule in settings.TASKS, not enqueued by hand.
    return f"metrics snapshot at {timezone.now():%H:%M:%S}"
