"""ex15 — configure the runtime from a YAML file with ``--config``.

The settings' OPTIONS ask for one worker on every queue; ``queue.yml`` replaces
that list with two kinds of worker (an email worker with 4 threads, and two
1-thread workers for reports). ``DJ_QUEUE_CONFIG=queue.yml`` would do the same;
``--config`` wins over it. The registered worker processes show what ran.

    python examples/ex15_intermediate_yaml_config.py
"""

import _support as example

example.configure()

from django.tasks import task  # noqa: E402

QUEUE_YML = """\
workers:                       # a list: replaces the settings' workers whole
  - queues: [email]
    threads: 4
    polling_interval: 0.1
  - queues: ["reports*"]
    threads: 1
    processes: 2
    polling_interval: 0.1
dispatchers:
  - batch_size: 200
    polling_interval: 0.2
"""


@task
def send_email(to):
    return f"sent to {to}"


@task
def build_report(name):
    return f"report {name}"


def main():
    config = example.workdir() / "queue.yml"
    config.write_text(QUEUE_YML)
    example.say(f"wrote {config.name}: 1 x 4 threads on email, 2 x 1 thread on reports*")

    with example.runtime("--config", str(config)) as node:
        workers = {p.name: p.metadata for p in node.processes() if p.kind == "worker"}
        for metadata in workers.values():
            example.say(f"  registered worker: {metadata}")
        [dispatcher] = [p.metadata for p in node.processes() if p.kind == "dispatcher"]
        example.say(f"  registered dispatcher: batch_size={dispatcher['batch_size']}")
        shapes = sorted((m["queues"], m["threads"]) for m in workers.values())
        example.check(dispatcher["batch_size"] == 200, "the dispatcher should be the YAML's")
        example.check(
            shapes == [(["email"], 4), (["reports*"], 1), (["reports*"], 1)],
            f"the workers should be the YAML's, not the settings' one: {shapes}",
        )
        email = example.wait(send_email.using(queue_name="email").enqueue("ada@example.com"))
        report = example.wait(build_report.using(queue_name="reports-daily").enqueue("sales"))

    for done in (email, report):
        ran_on = workers[done.worker_ids[0]]
        example.say(
            f"{done.task.name} on queue {done.task.queue_name!r} -> {done.return_value!r}, "
            f"run by the worker on {ran_on['queues']} (threads={ran_on['threads']})"
        )
        example.check(done.status.value == "SUCCESSFUL", f"{done.task.name} should succeed")
    example.check(workers[email.worker_ids[0]]["queues"] == ["email"], "email job on email worker")
    example.check(workers[report.worker_ids[0]]["queues"] == ["reports*"], "report on reports*")


if __name__ == "__main__":
    example.run(main)
