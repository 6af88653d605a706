"""ex18 — operate it: ``manage.py dj_queue_health`` and ``manage.py dj_queue_prune``.

The health probe exits 0 while a node runs (``--json`` gives the detail) and 1
once it has stopped. ``dj_queue_prune --older-than N`` deletes jobs that finished
more than N seconds ago — successful ones only, unless ``--include-failed``;
``--dry-run`` counts them first.

    python examples/ex18_intermediate_health_and_prune.py
"""

import json

import _support as example

example.configure()

from django.tasks import task  # noqa: E402
from django.utils import timezone  # noqa: E402

from dj_queue.models import Job  # noqa: E402


@task
def square(n):
    return n * n


@task
def broken():
    raise ValueError("this one fails")


def health(*flags):
    probe = example.manage("dj_queue_health", *flags)
    return probe.returncode, probe.stdout.strip()


def main():
    with example.runtime():
        code, output = health()
        example.say(f"dj_queue_health -> exit {code}: {output}")
        example.check(code == 0, "a running node should be healthy")
        code, output = health("--json")
        report = json.loads(output)
        [supervisor] = report["supervisors"]
        example.say(f"dj_queue_health --json -> healthy={report['healthy']} live={report['live']}")
        example.say(f"  supervisor pid {supervisor['pid']}: expected {supervisor['expected']}")
        example.check(report["healthy"] and code == 0, "--json should report healthy")
        example.wait_all([square.enqueue(n) for n in range(5)] + [broken.enqueue()])

    code, output = health()
    example.say(f"after SIGTERM, dj_queue_health -> exit {code}: {output}")
    example.check(code == 1, "a stopped node should be unhealthy")

    # Prune jobs finished over a second ago: wait until they all are.
    newest = Job.objects.order_by("-finished_at").first().finished_at
    example.wait_until(
        lambda: (timezone.now() - newest).total_seconds() > 1.2, what="jobs a second old"
    )
    dry = example.manage("dj_queue_prune", "--older-than", "1", "--dry-run")
    example.say(f"dj_queue_prune --older-than 1 --dry-run -> {dry.stdout.strip()}")
    example.check(Job.objects.count() == 6, "a dry run should delete nothing")
    done = example.manage("dj_queue_prune", "--older-than", "1")
    example.say(f"dj_queue_prune --older-than 1 -> {done.stdout.strip()}")
    left = list(Job.objects.values_list("task_path", flat=True))
    example.check(dry.returncode == 0 and done.returncode == 0, "prune should exit 0")
    example.check(left == [broken.module_path], f"only the failed job should be left: {left}")
    example.say(f"after pruning, {len(left)} job left: {left[0]} (failed, kept)")


if __name__ == "__main__":
    example.run(main)
