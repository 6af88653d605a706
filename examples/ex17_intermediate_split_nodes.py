"""ex17 — split a deployment into ``--only-work`` and ``--only-dispatch`` nodes.

Workers claim ready jobs; dispatchers turn scheduled jobs ready when their
``run_after`` comes. With only a work node running, a job scheduled a moment
ahead stays scheduled past its time; once an ``--only-dispatch`` node starts, it
is promoted and the work node runs it.

    python examples/ex17_intermediate_split_nodes.py
"""

import time
from datetime import timedelta

import _support as example

example.configure()

from django.tasks import task  # noqa: E402
from django.utils import timezone  # noqa: E402

from dj_queue.models import ReadyExecution, ScheduledExecution  # noqa: E402


@task
def remind(who):
    return f"reminded {who}"


def kinds(node):
    return sorted(process.kind for process in node.processes())


def main():
    work = example.start_runtime("--only-work", name="work-node")
    example.say(f"work node (pid {work.pid}) runs: supervisor + {kinds(work)}")
    example.check(kinds(work) == ["worker"], "the work node should run workers only")

    run_after = timezone.now() + timedelta(seconds=0.5)
    result = remind.using(run_after=run_after).enqueue("ada")
    example.say(f"enqueued remind('ada') with run_after {run_after:%H:%M:%S} (in 0.5 s)")

    # A negative check: give a would-be dispatcher 10 polling intervals past run_after.
    time.sleep(max(0.0, (run_after - timezone.now()).total_seconds()) + 1.0)
    still = remind.get_backend().get_result(result.id)
    scheduled = ScheduledExecution.objects.filter(job_id=result.id).exists()
    ready = ReadyExecution.objects.filter(job_id=result.id).exists()
    example.say(f"1 s past its time, work node only: {still.status.value}, scheduled={scheduled}")
    example.check(scheduled and not ready, "without a dispatcher the job should stay scheduled")

    with example.runtime("--only-dispatch", name="dispatch-node") as dispatch:
        example.say(f"dispatch node (pid {dispatch.pid}) runs: supervisor + {kinds(dispatch)}")
        example.check(kinds(dispatch) == ["dispatcher"], "the dispatch node: dispatchers only")
        workers = {process.name for process in work.processes()}
        done = example.wait(result)

    code = work.stop()
    example.check(code == 0, f"the work node exited with code {code}")
    example.check(done.worker_ids[0] in workers, "the work node's worker should run it")
    example.say(
        f"remind('ada') -> {done.return_value!r}: promoted by the dispatch node, "
        f"run by the work node's {done.worker_ids[0]}"
    )


if __name__ == "__main__":
    example.run(main)
