"""ex27 — two full nodes on one database: work is shared, recurring slots fire once.

Two ``manage.py dj_queue`` processes (each a supervisor with a worker, a
dispatcher and a scheduler) serve the same tables. 60 short jobs are split
between their workers, each job run once; a recurring task due every second is
fired by both schedulers, yet each slot gives exactly one job.

    python examples/ex27_advanced_many_nodes.py
"""

import time
from collections import Counter

import _support as example

example.configure(
    options={
        "recurring": {
            "tick": {"task_path": "ex27_advanced_many_nodes.tick", "schedule": "* * * * * *"}
        },
        "scheduler": {"polling_interval": 1},
    }
)

from django.tasks import task  # noqa: E402

from dj_queue.models import Job, Process, RecurringExecution  # noqa: E402


@task
def work(n):
    time.sleep(0.05)
    return n


@task
def tick():
    return "tick"


def main():
    with example.runtime(name="node-a") as a, example.runtime(name="node-b") as b:
        example.say(f"both nodes run {sorted(p.kind for p in a.processes())}")
        backend = work.get_backend()
        results = example.wait_all(backend.enqueue_all([(work, [n], {}) for n in range(60)]))
        node_of = {p.name: p.supervisor.pid for p in Process.objects.filter(kind="worker")}
        per_node = Counter(node_of[r.worker_ids[0]] for r in results)
        example.say(f"60 jobs: {per_node[a.pid]} run by node A, {per_node[b.pid]} by node B")
        example.check(sorted(r.return_value for r in results) == list(range(60)), "all 60 ran")
        example.check({r.attempts for r in results} == {1}, "each job should run exactly once")
        example.check(per_node[a.pid] and per_node[b.pid], "both nodes should take jobs")
        example.wait_until(
            lambda: RecurringExecution.objects.count() >= 3, timeout=10, what="3 tick slots"
        )

    slots = list(RecurringExecution.objects.filter(task_key="tick").order_by("run_at"))
    ticks = Job.objects.filter(task_path=tick.module_path)
    jobs_per_slot = Counter(slot.job_id for slot in slots)
    example.say(f"tick slots fired: {[f'{slot.run_at:%H:%M:%S}' for slot in slots]}")
    example.check(len({slot.run_at for slot in slots}) == len(slots), "one row per slot")
    example.check(max(jobs_per_slot.values()) == 1, "no job should belong to two slots")
    example.check(ticks.count() == len(slots), f"{ticks.count()} tick jobs for {len(slots)} slots")
    # Each scheduler logs the slots it won; the other found them taken and did nothing.
    won = [node.log().count("recurring task tick fired") for node in (a, b)]
    example.say(f"slots won by node A's scheduler: {won[0]}, by node B's: {won[1]}")
    example.check(sum(won) == len(slots), "each slot should be fired by one scheduler")
    example.say(f"{len(slots)} slots -> {ticks.count()} tick jobs: each slot fired exactly once")


if __name__ == "__main__":
    example.run(main)
