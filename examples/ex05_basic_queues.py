"""ex05 — queues and the workers that serve them.

Two workers: one serves ``["email", "default"]`` in that order, with one
thread, so every ready email job runs before any default job, whatever the
priorities; the other serves every queue starting with ``reports``. Each job
returns the pid of the process that ran it. A job in a queue no worker serves
stays READY.

    python examples/ex05_basic_queues.py
"""

import os
import time

import _support as example

example.configure(
    options={
        "workers": [
            {"queues": ["email", "default"], "threads": 1, "polling_interval": 0.1},
            {"queues": ["reports*"], "threads": 2, "polling_interval": 0.1},
        ]
    }
)

from django.tasks import TaskResultStatus, task  # noqa: E402

from dj_queue.api import QueueInfo  # noqa: E402


@task
def handle(label):
    # When it ran: jobs a worker claims together share their started_at.
    return {"label": label, "pid": os.getpid(), "ran_at": time.time_ns()}


def enqueue(queue, label, priority=0):
    return handle.using(queue_name=queue, priority=priority).enqueue(label)


def main():
    # Ready before the runtime starts: default jobs first, and with a higher priority.
    results = [
        enqueue("default", "resize-avatar", priority=20),
        enqueue("default", "update-index", priority=20),
        enqueue("email", "welcome"),
        enqueue("email", "receipt"),
    ]
    orphan = enqueue("archive", "old-logs")
    example.say("enqueued 2 default jobs (priority 20), 2 email jobs (priority 0), 1 archive job")

    with example.runtime() as node:
        workers = {p.name: p for p in node.processes() if p.kind == "worker"}
        done = example.wait_all(results)
        # Enqueued once the first worker is done, so the two never claim at the
        # same moment (on MariaDB a claim may skip rows another claim is scanning).
        reports = [
            enqueue("reports-daily", "daily-sales"),
            enqueue("reports-weekly", "weekly-sales"),
        ]
        done += example.wait_all(reports)
        orphan.refresh()

    pid_of = {tuple(p.metadata["queues"]): p.pid for p in workers.values()}
    for selectors, pid in pid_of.items():
        example.say(f"worker pid {pid} serves {list(selectors)}")
    ran_in = {}  # queue -> pids of the processes that ran its jobs
    in_run_order = sorted(done, key=lambda r: r.return_value["ran_at"])
    for result in in_run_order:
        value = result.return_value
        ran_in.setdefault(result.task.queue_name, set()).add(value["pid"])
        example.say(
            f"  {result.task.queue_name:<15} {value['label']:<14} "
            f"priority {result.task.priority:>2}  ran in pid {value['pid']}"
        )
        worker = workers[result.worker_ids[0]]
        example.check(value["pid"] == worker.pid, "worker_ids name the process that ran it")

    first_pid, reports_pid = pid_of[("email", "default")], pid_of[("reports*",)]
    for queue in ("email", "default"):
        example.check(ran_in[queue] == {first_pid}, f"{queue} ran in the email/default worker")
    for queue in ("reports-daily", "reports-weekly"):
        example.check(ran_in[queue] == {reports_pid}, f"{queue} ran in the reports* worker")
    order = [r.task.queue_name for r in in_run_order]
    first_worker = [queue for queue in order if queue in ("email", "default")]
    example.check(first_worker == ["email", "email", "default", "default"], f"order {order}")
    example.say("email jobs ran before the higher-priority default jobs: selector order wins")

    example.check(orphan.status == TaskResultStatus.READY, "the archive job is still READY")
    example.check(QueueInfo("archive").size == 1, "'archive' still holds its job")
    example.say(
        f"email+default -> pid {first_pid}, reports-* -> pid {reports_pid}, "
        f"archive -> {orphan.status.value} (QueueInfo size {QueueInfo('archive').size})"
    )


if __name__ == "__main__":
    example.run(main)
