"""ex13 — django.tasks signals: task_enqueued, task_started, task_finished.

``task_enqueued`` fires in the process that enqueues; ``task_started`` and
``task_finished`` fire in the worker process that runs the job, so these
receivers write to a file the example then reads. A receiver that raises is
logged and ignored: it does not fail the job.

    python examples/ex13_intermediate_signals.py
"""

import _support as example

example.configure()

import os  # noqa: E402

from django.dispatch import receiver  # noqa: E402
from django.tasks import task  # noqa: E402
from django.tasks.signals import task_enqueued, task_finished, task_started  # noqa: E402


@task
def resize_image(name, width):
    return f"{name}@{width}px"


def note(line):
    with (example.workdir() / "signals.log").open("a") as log:
        log.write(f"{line}, pid {os.getpid()}\n")


def worker_lines():
    path = example.workdir() / "signals.log"
    return path.read_text().splitlines() if path.exists() else []


# dispatch_uid keeps a receiver connected once even if its module is imported
# twice (as this file is: as __main__, and under its own name).
@receiver(task_enqueued, dispatch_uid="on_enqueued")
def on_enqueued(sender, task_result, **kwargs):
    status = task_result.status.value
    example.say(f"task_enqueued: {task_result.task.name} {status}, pid {os.getpid()}")


@receiver(task_started, dispatch_uid="on_started")
def on_started(sender, task_result, **kwargs):
    note(f"task_started: {task_result.task.name} attempt {task_result.attempts}")


@receiver(task_finished, dispatch_uid="on_finished")
def on_finished(sender, task_result, **kwargs):
    note(f"task_finished: {task_result.task.name} {task_result.status.value}")


@receiver(task_finished, dispatch_uid="broken_receiver")
def broken_receiver(sender, task_result, **kwargs):
    raise RuntimeError("oops")


def main():
    example.say(f"main() runs in pid {os.getpid()}")
    results = [resize_image.enqueue("cat.png", 200), resize_image.enqueue("dog.png", 640)]

    with example.runtime() as runtime:
        results = example.wait_all(results)
        example.wait_until(
            lambda: (
                sum("task_finished" in line for line in worker_lines()) == 2
                and "RuntimeError: oops" in runtime.log()
            ),
            what="the worker's task_finished receivers",
        )
    lines = worker_lines()
    for line in lines:
        example.say(f"  worker wrote: {line}")
    example.check(str(os.getpid()) not in "".join(lines), "started/finished fire in the worker")
    example.check(sum("task_started" in line for line in lines) == 2, "two task_started lines")
    example.check("signal receiver <function broken_receiver" in runtime.log(), "logged")
    example.say("the runtime logged: signal receiver broken_receiver raised ... RuntimeError: oops")

    example.check(all(r.status.value == "SUCCESSFUL" for r in results), "jobs should succeed")
    values = [r.return_value for r in results]
    example.say(f"despite the raising receiver: resize_image x2 -> {values} (SUCCESSFUL)")


if __name__ == "__main__":
    example.run(main)
