"""Tasks for ``bench/concurrency.py``: the same near no-op, with and without a
concurrency limit.

Each call appends a ``start`` and an ``end`` line (``time.time_ns()``, the key and
the call's number) to the ledger file named by ``DJ_QUEUE_BENCH_LEDGER``, when it
is set: one short line per ``open(..., "a").write``, which is one ``O_APPEND``
write, so lines from several threads and processes never interleave. Both tasks
write it, so the two drains do the same work and differ only by the limit.
"""

import os
import time

from django.tasks import task

LEDGER_ENV = "DJ_QUEUE_BENCH_LEDGER"
LIMIT = 2


def _note(event: str, key: str, n: int) -> None:
    path = os.environ.get(LEDGER_ENV)
    if path:
        with open(path, "a") as ledger:
            ledger.write(f"{event} {time.time_ns()} {key} {n}\n")


def _run(key: str, n: int) -> None:
    _note("start", key, n)
    _note("end", key, n)


@task
def unlimited(key: str, n: int) -> None:
    _run(key, n)


@task
def limited(key: str, n: int) -> None:
    _run(key, n)


limited.func.concurrency_key = "bench:{key}"
limited.func.concurrency_limit = LIMIT
limited.func.concurrency_duration = 300
limited.func.on_conflict = "block"


# A limit no benchmark reaches: every enqueue finds a free slot of one shared key.
@task
def roomy(key: str, n: int) -> None:
    _run(key, n)


roomy.func.concurrency_key = "roomy:{key}"
roomy.func.concurrency_limit = 1_000_000_000
