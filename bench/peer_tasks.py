"""The latency task for the dj-queue release, which keeps no start time once a job has
finished (its claimed-execution row, where the start is, is deleted then).

The task notes, in the file ``DJ_QUEUE_BENCH_PEER_LEDGER`` names, its job's id and the
start time the release itself gives a running job (the claim time, what ``started_at``
reports while the job runs). Enqueue, bulk and drain run the plain no-op of
bench/benchapp/tasks.py, as the other systems do.
"""

import os

from django.tasks import TaskContext, task

LEDGER_ENV = "DJ_QUEUE_BENCH_PEER_LEDGER"


@task(takes_context=True)
def stamped(context: TaskContext) -> None:
    result = context.task_result
    assert result.started_at is not None
    with open(os.environ[LEDGER_ENV], "a") as ledger:
        ledger.write(f"{result.id} {result.started_at.isoformat()}\n")
