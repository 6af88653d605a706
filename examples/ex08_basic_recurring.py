"""ex08 — a static recurring task, fired by the scheduler every second.

``OPTIONS["recurring"]`` declares ``heartbeat`` with the six-field schedule
``* * * * * *`` (the sixth field is seconds). The full runtime's scheduler syncs
it to ``dj_queue_recurring_task`` and fires each slot once: one
``RecurringExecution`` row and one job per slot, run by a worker.

    python examples/ex08_basic_recurring.py
"""

import _support as example

example.configure(
    options={
        "recurring": {
            "heartbeat": {
                "task_path": "ex08_basic_recurring.beat",
                "schedule": "* * * * * *",  # every second
                "kwargs": {"source": "scheduler"},
                "description": "a heartbeat every second",
            }
        },
        # The scheduler also wakes for each due slot; this bounds how long it
        # takes to notice table changes.
        "scheduler": {"polling_interval": 0.5},
    }
)

from django.tasks import task  # noqa: E402

from dj_queue.models import RecurringExecution, RecurringTask  # noqa: E402

SLOTS = 3


@task
def beat(source):
    return f"beat from {source}"


def main():
    with example.runtime() as node:
        kinds = sorted(p.kind for p in node.processes())
        example.say(f"runtime children: {', '.join(kinds)}")
        example.check("scheduler" in kinds, "a full node runs a scheduler")

        def fired():
            rows = list(RecurringExecution.objects.order_by("run_at")[:SLOTS])
            return rows if len(rows) == SLOTS else None

        slots = example.wait_until(fired, timeout=10, what=f"{SLOTS} slots to fire")
        results = example.wait_all(beat.get_result(str(slot.job_id)) for slot in slots)

    row = RecurringTask.objects.get(key="heartbeat")
    example.say(
        f"RecurringTask {row.key!r}: schedule {row.schedule!r}, static={row.static}, "
        f"kwargs={row.kwargs}, last_run_at {row.last_run_at:%H:%M:%S}"
    )
    example.check(row.static and row.task_path == "ex08_basic_recurring.beat", "synced row")
    for slot, result in zip(slots, results, strict=True):
        delay = (result.enqueued_at - slot.run_at).total_seconds()
        example.say(
            f"  slot {slot.run_at:%H:%M:%S}: job enqueued {delay:+.3f}s after it, "
            f"{result.status.value} {result.return_value!r}"
        )
        example.check(slot.run_at.microsecond == 0, "slots are whole seconds")
        example.check(result.return_value == "beat from scheduler", "each slot's job ran")
    times = [slot.run_at for slot in slots]
    example.check(times == sorted(set(times)), "each slot fired once, in order")
    example.check(row.last_run_at >= times[-1], "the task remembers its last firing")
    total = RecurringExecution.objects.count()
    example.say(f"{SLOTS} slots fired (of {total} RecurringExecution rows), each job SUCCESSFUL")


if __name__ == "__main__":
    example.run(main)
