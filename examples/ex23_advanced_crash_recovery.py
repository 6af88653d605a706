"""ex23 — crash recovery: a worker process killed mid-job.

In fork mode each worker is a child process of the supervisor. We SIGKILL the
child running a job: the supervisor notices at once, fails the job with
ProcessExitError ("… was killed by SIGKILL") and starts a replacement worker,
which runs the next job. retry_failed_job() then runs the killed job to success.

    python examples/ex23_advanced_crash_recovery.py
"""

import os
import signal
import time

import _support as example

example.configure()

from django.tasks import task  # noqa: E402

from dj_queue.models import ClaimedExecution, FailedExecution, Process  # noqa: E402
from dj_queue.operations.jobs import retry_failed_job  # noqa: E402


@task(takes_context=True)
def crunch(context, n, hang=False):
    if hang and context.attempt == 1:
        time.sleep(30)  # this first attempt hangs: it is killed long before it ends
    return n * n


def main():
    with example.runtime() as node:  # mode "fork" is the default
        job = crunch.enqueue(12, hang=True)
        claim = example.wait_until(
            lambda: (
                ClaimedExecution.objects.filter(job_id=job.id).select_related("process").first()
            ),
            what="crunch(12) to be claimed",
        )
        victim = claim.process
        example.check(victim.kind == "worker" and victim.pid != node.pid, "a worker child")
        example.say(f"crunch(12) is running in worker pid {victim.pid}; sending SIGKILL")
        os.kill(victim.pid, signal.SIGKILL)

        failed = example.wait(job)
        failure = FailedExecution.objects.get(job_id=job.id)
        example.say(f"crunch(12) -> {failed.status.value}: {failure.exception_class}")
        example.say(f"  {failure.message}")
        example.check(failure.exception_class == "dj_queue.exceptions.ProcessExitError", "class")
        example.check("was killed by SIGKILL" in failure.message, "the message says how it died")

        replacement = example.wait_until(
            lambda: (
                Process.objects.filter(kind="worker", supervisor__pid=node.pid)
                .exclude(pid=victim.pid)
                .first()
            ),
            what="a replacement worker",
        )
        example.say(f"the supervisor started a replacement worker, pid {replacement.pid}")
        following = example.wait(crunch.enqueue(5))
        example.say(f"the next job ran on it: crunch(5) -> {following.return_value}")
        example.check(following.worker_ids == [replacement.name], "run by the replacement")

        retry_failed_job(job.id)
        retried = example.wait(job)

    example.check(retried.status.value == "SUCCESSFUL", "the retried job should succeed")
    example.check(retried.attempts == 2 and len(retried.errors) == 1, "one failed attempt kept")
    example.say(
        f"after retry_failed_job: crunch(12) -> {retried.return_value} "
        f"({retried.status.value} on attempt {retried.attempts}, first error kept)"
    )


if __name__ == "__main__":
    example.run(main)
