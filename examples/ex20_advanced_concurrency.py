"""ex20 — concurrency limits: at most N jobs of a key run at once, across the whole runtime.

``sync_account`` allows one running job per account, ``export_report`` two per
customer. Ten jobs go to a worker with six threads: jobs over their key's limit
wait *blocked*; each finishing job hands its slot to the next, while different
keys run side by side. The tasks log their start and end times to a file.

    python examples/ex20_advanced_concurrency.py
"""

import json
import time
from collections import Counter

import _support as example

example.configure(options={"workers": [{"queues": ["*"], "threads": 6, "polling_interval": 0.1}]})

from django.tasks import task  # noqa: E402

from dj_queue.api import QueueInfo  # noqa: E402
from dj_queue.models import BlockedExecution  # noqa: E402


def record(key, work):
    started = time.time()
    time.sleep(0.4)  # the work itself
    with open(example.workdir() / "runs.jsonl", "a") as log:
        log.write(json.dumps({"key": key, "work": work, "start": started, "end": time.time()}))
        log.write("\n")


@task
def sync_account(account_id, action):
    record(f"account:{account_id}", action)


# On Django 6.1 these can be @task(concurrency_key=..., concurrency_limit=...) arguments.
sync_account.func.concurrency_key = "account:{account_id}"
sync_account.func.concurrency_limit = 1


@task
def export_report(customer_id, report):
    record(f"export:{customer_id}", report)


export_report.func.concurrency_key = "export:{customer_id}"
export_report.func.concurrency_limit = 2
export_report.func.concurrency_duration = 60  # seconds a slot is held at most


def most_at_once(intervals):
    """The largest number of intervals that overlap at any moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


def main():
    results = [sync_account.enqueue(account, f"sync-{n}") for account in (1, 2) for n in range(3)]
    results += [export_report.enqueue(9, f"report-{n}") for n in range(4)]
    blocked = Counter(BlockedExecution.objects.values_list("concurrency_key", flat=True))
    queue = QueueInfo("default")
    example.say(f"enqueued {len(results)} jobs: {queue.size} ready, {queue.blocked} blocked")
    example.say(f"blocked jobs per key while they wait: {dict(sorted(blocked.items()))}")
    example.check(blocked == {"account:1": 2, "account:2": 2, "export:9": 2}, f"blocked: {blocked}")

    with example.runtime():
        done = example.wait_all(results)
    example.check(all(r.status.value == "SUCCESSFUL" for r in done), "every job should succeed")
    example.check(not BlockedExecution.objects.exists(), "no job should be left blocked")

    lines = (example.workdir() / "runs.jsonl").read_text().splitlines()
    runs = [json.loads(line) for line in lines]
    began = min(run["start"] for run in runs)
    by_key = {}
    for run in sorted(runs, key=lambda run: run["start"]):
        by_key.setdefault(run["key"], []).append((run["start"] - began, run["end"] - began))
    for key, intervals in sorted(by_key.items()):
        example.say(f"  {key:<10} ran at " + ", ".join(f"{s:.2f}-{e:.2f}s" for s, e in intervals))

    limits = {"account:1": 1, "account:2": 1, "export:9": 2}
    peaks = {key: most_at_once(intervals) for key, intervals in sorted(by_key.items())}
    overall = most_at_once([interval for intervals in by_key.values() for interval in intervals])
    example.check(peaks == limits, f"each key should run exactly up to its limit: {peaks}")
    example.check(overall >= 3, f"different keys should run in parallel (at most {overall})")
    shown = ", ".join(f"{key}={peak}/{limits[key]}" for key, peak in peaks.items())
    example.say(f"most running at once per key: {shown}; across keys: {overall}")


if __name__ == "__main__":
    example.run(main)
