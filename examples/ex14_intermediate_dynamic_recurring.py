"""ex14 — dynamic recurring tasks: schedule, change and unschedule at runtime.

With ``scheduler.dynamic_tasks_enabled``, ``schedule_recurring_task`` creates
(or updates) a cron-scheduled task from any process and
``unschedule_recurring_task`` removes it; the running scheduler picks each
change up within its ``polling_interval``, no restart needed.

    python examples/ex14_intermediate_dynamic_recurring.py
"""

import _support as example

example.configure(options={"scheduler": {"dynamic_tasks_enabled": True, "polling_interval": 0.2}})

import time  # noqa: E402

from django.tasks import task  # noqa: E402

from dj_queue.api import schedule_recurring_task, unschedule_recurring_task  # noqa: E402
from dj_queue.models import Job  # noqa: E402

EVERY_SECOND = "* * * * * */1"  # croniter's optional sixth field: seconds


@task
def send_digest(audience):
    return f"digest sent to {audience}"


def digests(audience=None):
    jobs = Job.objects.filter(task_path=send_digest.module_path)
    if audience is not None:
        jobs = jobs.filter(finished_at__isnull=False, kwargs__audience=audience)
    return list(jobs.order_by("enqueued_at").values_list("return_value", flat=True))


def main():
    with example.runtime():
        created = schedule_recurring_task(
            "digest", send_digest, EVERY_SECOND, kwargs={"audience": "staff"}
        )
        example.say(f"schedule_recurring_task('digest', every second, staff) -> {created}")
        example.check(created is True, "the task should be created")
        fired = example.wait_until(
            lambda: len(digests("staff")) >= 2 and digests("staff"), what="2 firings"
        )
        example.say(f"  fired: {fired[:2]}")

        updated = schedule_recurring_task(
            "digest", send_digest, EVERY_SECOND, kwargs={"audience": "everyone"}
        )
        example.say(f"schedule_recurring_task('digest', ..., everyone) -> {updated} (an update)")
        example.check(updated is False, "the second call should update, not create")
        fired = example.wait_until(
            lambda: len(digests("everyone")) >= 2 and digests("everyone"), what="the new kwargs"
        )
        example.say(f"  fired: {fired[:2]}")

        removed = unschedule_recurring_task("digest")
        # Each firing locks the task's row and enqueues in one transaction: none can follow this.
        count = len(digests())
        example.say(f"unschedule_recurring_task('digest') -> {removed}; {count} jobs so far")
        example.check(removed is True, "the task should be removed")
        time.sleep(1.5)  # at least one slot of a once-a-second schedule passes
        later = len(digests())

    example.check(later == count, f"{later - count} jobs were enqueued after unscheduling")
    example.say(f"unscheduled: {count} digest jobs then, {later} after 1.5 s -> it stopped firing")


if __name__ == "__main__":
    example.run(main)
