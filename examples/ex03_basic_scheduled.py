"""ex03 — scheduled jobs: ``task.using(run_after=...)``.

A job with a ``run_after`` two seconds ahead waits in the scheduled table,
READY but unclaimable, while a job enqueued beside it without one runs at once.
When its time comes the dispatcher promotes it to ready and a worker runs it,
never before ``run_after``.

    python examples/ex03_basic_scheduled.py
"""

import time
from datetime import timedelta

import _support as example

example.configure()

from django.tasks import TaskResultStatus, task  # noqa: E402
from django.utils import timezone  # noqa: E402

from dj_queue.models import ReadyExecution, ScheduledExecution  # noqa: E402


@task
def send_digest(name):
    return f"{name} digest sent"


def where(result):
    """The state table holding the job's row (a finished job has none)."""
    if ScheduledExecution.objects.filter(job_id=result.id).exists():
        return "scheduled"
    if ReadyExecution.objects.filter(job_id=result.id).exists():
        return "ready"
    return "none"


def main():
    with example.runtime():
        # run_after is an aware datetime (django.tasks takes no timedelta):
        # "in two seconds" is now + timedelta(seconds=2).
        run_after = timezone.now() + timedelta(seconds=2)
        later = send_digest.using(run_after=run_after).enqueue("daily")
        right_away = send_digest.enqueue("instant")
        example.say(f"enqueued 'daily' with run_after={run_after:%H:%M:%S.%f} and 'instant' now")
        example.say(f"  'daily': {later.status.value}, state row: {where(later)}")
        example.check(where(later) == "scheduled", "a future job waits in the schedule")

        instant = example.wait(right_away)
        example.say(f"  'instant' ran at once: {instant.return_value!r}")
        example.check(instant.finished_at < run_after, "'instant' did not wait")
        # Until its time, the scheduled job stays READY and unclaimed.
        while timezone.now() < run_after - timedelta(seconds=0.2):
            status = send_digest.get_backend().get_result(later.id).status
            state = where(later)
            if timezone.now() < run_after:  # both read before its time
                example.check(status == TaskResultStatus.READY, "READY until run_after")
                example.check(state == "scheduled", "scheduled until run_after")
            time.sleep(0.05)
        example.say("  'daily' until just before its time: READY, state row: scheduled")

        done = example.wait(later)

    example.say(f"  'daily' after its time: state row: {where(later)}")
    late_by = (done.started_at - run_after).total_seconds()
    example.say(f"'daily' started at {done.started_at:%H:%M:%S.%f}")
    example.check(done.started_at >= run_after, "started_at >= run_after")
    example.check(done.task.run_after == run_after, "the result keeps its run_after")
    example.say(f"scheduled job -> {done.return_value!r}, started {late_by:.2f}s after run_after")
    example.check(done.return_value == "daily digest sent", "the scheduled job ran")


if __name__ == "__main__":
    example.run(main)
