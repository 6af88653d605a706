"""ex16 — the same jobs under ``--mode fork`` and ``--mode async``.

In fork mode (the default) every worker is a child process of the supervisor,
so a task reports a pid of its own; in async mode the workers are threads of
the supervisor, so the task reports the supervisor's pid. The registered
processes say the same.

    python examples/ex16_intermediate_fork_vs_async.py
"""

import os

import _support as example

example.configure(
    options={"workers": [{"queues": ["*"], "threads": 2, "processes": 2, "polling_interval": 0.1}]}
)

from django.tasks import task  # noqa: E402


@task
def where_am_i():
    return os.getpid()


def run_under(mode):
    with example.runtime("--mode", mode) as node:
        workers = [p for p in node.processes() if p.kind == "worker"]
        results = example.wait_all([where_am_i.enqueue() for _ in range(6)])
    task_pids = sorted({r.return_value for r in results})
    example.say(
        f"  {mode}: supervisor pid {node.pid}, worker rows' pids {sorted(p.pid for p in workers)}"
    )
    example.say(f"  {mode}: 6 jobs reported pid(s) {task_pids}")
    return node.pid, {p.pid for p in workers}, set(task_pids)


def main():
    forked, worker_pids, forked_pids = run_under("fork")
    example.check(forked not in worker_pids, "fork: workers should be child processes")
    example.check(forked_pids <= worker_pids, "fork: tasks should run in the worker processes")
    example.check(forked not in forked_pids, "fork: no task should run in the supervisor")

    supervisor, worker_pids, task_pids = run_under("async")
    example.check(worker_pids == {supervisor}, "async: workers should be the supervisor's threads")
    example.check(task_pids == {supervisor}, "async: tasks should run in the supervisor")

    example.say(
        f"fork: tasks ran in child pid(s) {sorted(forked_pids)} of supervisor {forked}; "
        f"async: every task ran in the supervisor's own pid {supervisor}"
    )


if __name__ == "__main__":
    example.run(main)
