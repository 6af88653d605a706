"""What a concurrency limit costs: limited vs unlimited jobs, side by side in one run.

    DJ_QUEUE_TEST_DB=postgresql .venv/bin/python bench/concurrency.py
        [--database sqlite|postgresql|mariadb|all] [--quick] [--json PATH]

(``--database`` defaults to ``DJ_QUEUE_TEST_DB``, else sqlite; the settings are
``bench/settings.py``'s, on a scratch database made for the run and dropped after.)

1. Per operation, median milliseconds over N calls (2,000; --quick 500) taken in
   5 rounds, the cases taking turns: ``enqueue()`` of an unlimited task, of a
   limited one that finds a free slot (a new key each call; one key with a limit
   never reached) and of a limited one that is blocked (its key's 2 slots held);
   ``complete_job`` of a claimed unlimited job, and of a claimed limited job that
   gives back its slot and hands it on to a blocked job of its key (the claim
   before each is not timed); and a job's completion with the claim of the next,
   the way a busy worker thread records them (one transaction).
2. Drain: N jobs (2,000; --quick 500) pre-enqueued, then run by one
   ``manage.py dj_queue --only-work`` subprocess (1 worker process x 4 threads):
   once unlimited, once limited to 2 at a time over 5 keys. Each job writes
   start/end lines to a ledger; a sweep over them gives the most jobs of one key
   seen running at once (and the same over the rows' started_at..finished_at).

Prints the figures and the ratio limited / unlimited per database; exits 1 if a
key was seen running more than its limit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overlap import ledger_overlap, row_overlap, server_counters  # noqa: E402
from bench.run import (  # noqa: E402
    DATABASES,
    FOREIGN_ENV,
    _run_child,
    _runtime_env,
    run_database_or_all,
)

SIZES = {False: {"runs": 2000, "drain": 2000}, True: {"runs": 500, "drain": 500}}
ROUNDS = 5
WARMUP = 50  # calls per case before measuring: connections, caches, plans
KEYS = 5
BATCH = 500
ALIAS = "default"
# Runtime log lines worth showing: anything that is not routine lifecycle.
TROUBLE = re.compile(r"error|exception|traceback|deadlock|lock wait|retr|lost|warn", re.I)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DJ_QUEUE_TEST_DB")
    parser.add_argument(
        "--database",
        choices=(*DATABASES, "all"),
        default=default if default in DATABASES else "sqlite",
        help="default: DJ_QUEUE_TEST_DB, else sqlite",
    )
    parser.add_argument("--quick", action="store_true", help="N=500: under a minute a database")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the figures there (with --database all, -<database> is added)",
    )
    return parser.parse_args()


def main() -> int:
    return run_database_or_all(parse_args(), run_all, run_one)


def run_all(args: argparse.Namespace) -> int:
    """One child process per database: Django's settings are fixed once set up."""
    status = 0
    for database in DATABASES:
        command = [sys.executable, __file__, "--database", database]
        if args.quick:
            command.append("--quick")
        if args.json:
            path = Path(args.json)
            command += ["--json", str(path.with_name(f"{path.stem}-{database}{path.suffix}"))]
        status = max(status, _run_child(command))
    return status


def run_one(args: argparse.Namespace) -> int:
    for name in FOREIGN_ENV:
        os.environ.pop(name, None)
    os.environ["DJ_QUEUE_BENCH_DB"] = args.database
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from bench import report
    from bench.harness import scratch_database

    sizes = SIZES[args.quick]
    started = datetime.now(UTC)
    with scratch_database() as name:
        results = report.describe(args.database, args.quick, started)
        results["operations"] = measure_operations(sizes["runs"])
        results["drain"] = measure_drains(sizes["drain"], _runtime_env(name))
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["git_end"] = report.git_state()
    results["duration_seconds"] = (datetime.now(UTC) - started).total_seconds()
    print(table(results))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**results, "command": sys.argv}, indent=2, default=str) + "\n")
        print(f"figures written to {path}")
    over = {
        run: figures["max_per_key_ledger"]
        for run, figures in results["drain"].items()
        if figures["limit"] and max(figures["max_per_key_ledger"].values()) > figures["limit"]
    }
    if over:
        print(f"LIMIT EXCEEDED: {over}", file=sys.stderr)
        return 1
    return 0


# -- 1. per operation ---------------------------------------------------------------

Step = Callable[[], Callable[[], Any]]  # untimed preparation -> the call to time


def measure_operations(runs: int) -> dict[str, Any]:
    per_round = runs // ROUNDS
    _timed_rounds(_cases(WARMUP), 1, WARMUP)
    cases = _cases(per_round * ROUNDS)
    medians = _timed_rounds(cases, ROUNDS, per_round)
    _check_operations(per_round * ROUNDS)
    return {"runs": per_round * ROUNDS, "median_ms": medians}


def _cases(runs: int) -> dict[str, Step]:
    """Empty tables holding what ``runs`` calls of each case need, and the cases."""
    from bench.benchapp.limited_tasks import LIMIT, limited, roomy, unlimited
    from bench.harness import empty_tables
    from dj_queue.concurrency import ConcurrencyLimit
    from dj_queue.operations.claims import Claimant, claim_jobs, complete_and_claim_next
    from dj_queue.operations.jobs import complete_job
    from dj_queue.operations.processes import register_process

    empty_tables()
    process = register_process(
        ALIAS, kind="worker", name=f"bench-{uuid.uuid4().hex[:8]}", backend_alias=ALIAS
    )
    for n in range(LIMIT):  # the "hot" key's slots are held: its next jobs block
        limited.enqueue("hot", -1 - n)
    # Completions claim from queues of their own, so the enqueue cases cannot feed them.
    plain, chain = unlimited.using(queue_name="plain"), limited.using(queue_name="chain")
    _enqueue_all((plain, ("plain", n)) for n in range(runs))
    # LIMIT ready, the rest blocked: each completion hands its slot on to one of them.
    _enqueue_all((chain, ("chain", n)) for n in range(runs + LIMIT))
    _enqueue_all((unlimited.using(queue_name="plain2"), ("plain2", n)) for n in range(runs + 1))
    _enqueue_all((limited.using(queue_name="chain2"), ("chain2", n)) for n in range(runs + LIMIT))
    numbers = itertools.count()

    def claim(queue: str) -> list[Any]:
        return claim_jobs(
            ALIAS, process_id=process.pk, worker_id="bench", selectors=[queue], limit=1
        )

    def enqueue(task: Any, key: Callable[[int], str]) -> Step:
        def step() -> Callable[[], Any]:
            n = next(numbers)
            return lambda: task.enqueue(key(n), n)

        return step

    def complete(queue: str) -> Step:
        def step() -> Callable[[], Any]:
            [job] = claim(queue)
            limit = ConcurrencyLimit.of_job(job)

            def call() -> None:
                if not complete_job(ALIAS, job.id, process.pk, None, preserve=True, limit=limit):
                    raise RuntimeError(f"complete_job({job.id}) found no claim")

            return call

        return step

    def cycle(queue: str) -> Step:
        """What a busy worker thread does after a job: record it and claim the
        next in one transaction (dj_queue.runtime.execution._complete); a
        limited job also hands its slot on in that transaction."""
        claimant = Claimant(process_id=process.pk, worker_id="bench", selectors=(queue,))
        current = claim(queue)

        def step() -> Callable[[], Any]:
            job = current.pop()
            limit = ConcurrencyLimit.of_job(job)

            def call() -> None:
                completed, following = complete_and_claim_next(
                    ALIAS,
                    claimant,
                    job_id=job.id,
                    return_value=None,
                    preserve=True,
                    limit=limit,
                )
                if not completed or following is None:
                    raise RuntimeError(f"job {job.id}: completed {completed}, next {following}")
                current.append(following)

            return call

        return step

    return {
        "enqueue_unlimited": enqueue(unlimited, lambda n: "free"),
        "enqueue_free_new_key": enqueue(limited, lambda n: f"free{n}"),
        "enqueue_free_shared_key": enqueue(roomy, lambda n: "shared"),
        "enqueue_blocked": enqueue(limited, lambda n: "hot"),
        "complete_unlimited": complete("plain"),
        "complete_hand_on": complete("chain"),
        "cycle_unlimited": cycle("plain2"),
        "cycle_limited": cycle("chain2"),
    }


def _enqueue_all(calls: Iterable[tuple[Any, tuple[Any, ...]]]) -> None:
    from django.tasks import task_backends

    batch = [(task, args, {}) for task, args in calls]
    for start in range(0, len(batch), BATCH):
        task_backends[ALIAS].enqueue_all(batch[start : start + BATCH])  # type: ignore[attr-defined]


def _timed_rounds(cases: dict[str, Step], rounds: int, per_round: int) -> dict[str, float]:
    """Median ms per case; cases take turns, their order reversed every other round."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            for _ in range(per_round):
                call = cases[name]()
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def _check_operations(runs: int) -> None:
    """Each case did what it is named for."""
    from bench.benchapp.limited_tasks import LIMIT
    from dj_queue.models import BlockedExecution, ReadyExecution, Semaphore

    found = {
        "blocked jobs of the full key": BlockedExecution.objects.filter(
            concurrency_key="bench:hot"
        ).count(),
        "ready jobs with a free slot": ReadyExecution.objects.filter(queue_name="default").count(),
        "blocked jobs left behind the hand-ons": BlockedExecution.objects.filter(
            concurrency_key__in=["bench:chain", "bench:chain2"]
        ).count(),
        "ready unlimited jobs left unclaimed": ReadyExecution.objects.filter(
            queue_name__in=["plain", "plain2"]
        ).count(),
        "semaphores": Semaphore.objects.count(),
    }
    # ready: unlimited + two free cases + the hot key's holders; semaphores: one per
    # new key + shared + hot + chain + chain2.
    wanted = [runs, 3 * runs + LIMIT, 0, 0, runs + 4]
    if list(found.values()) != wanted:
        raise RuntimeError(f"operations left {found}, expected {wanted}")


# -- 2. drain -----------------------------------------------------------------------


def measure_drains(count: int, env: dict[str, str]) -> dict[str, Any]:
    from bench.benchapp.limited_tasks import LIMIT, limited, unlimited

    return {
        "unlimited": _drain(unlimited, None, count, env),
        "limited": _drain(limited, LIMIT, count, env),
    }


def _drain(task: Any, limit: int | None, count: int, env: dict[str, str]) -> dict[str, Any]:
    """Jobs/s from starting the runtime until the last pre-enqueued job is done."""
    from bench.benchapp.limited_tasks import LEDGER_ENV
    from bench.harness import LOG_DIR, Runtime, empty_tables, poll
    from bench.measures import _all_done, _require_no_failures
    from bench.systems import DjQueue

    label = "limited" if limit else "unlimited"
    system = DjQueue(f"dj_queue_{label}", f"dj_queue {label}", task)
    ledger = LOG_DIR / f"dj_queue_bench_{os.getpid()}_{label}.ledger"
    ledger.unlink(missing_ok=True)
    empty_tables()
    # Keys in blocks of count/KEYS consecutive jobs: unlimited, the 4 threads
    # mostly run jobs of one key at once, which the limited run must not.
    _enqueue_all((task, (f"k{n * KEYS // count}", n)) for n in range(count))
    command = ["dj_queue", "--backend", ALIAS, "--only-work"]
    before = server_counters()
    try:
        with Runtime(f"concurrency_{label}", [command], {**env, LEDGER_ENV: str(ledger)}) as rt:
            poll(lambda: _all_done(system, rt), timeout=60 + count / 10)
            elapsed = time.monotonic() - rt.started
            rt.stop()
            said = [
                line for log in rt.logs for line in log.read_text(errors="replace").splitlines()
            ]
        after = server_counters()
        _require_no_failures(system)
        first, last = system.window()
        busy = (last - first).total_seconds()
        return {
            "count": count,
            "limit": limit,
            "keys": KEYS,
            "jobs_per_s": count / elapsed,
            "seconds": elapsed,
            # The same without the runtime's start-up: first claim to last finish.
            "busy_jobs_per_s": count / busy,
            "busy_seconds": busy,
            "startup_seconds": first.timestamp() - rt.started_wall,
            "max_per_key_ledger": ledger_overlap(ledger, count),
            "max_per_key_rows": row_overlap(),
            "runtime_log": said[:200],
            # dj_queue retries deadlocks quietly (DEBUG): the server counts them.
            "server_counters": {name: after[name] - before[name] for name in after},
            "runtime_trouble": [line for line in said if TROUBLE.search(line)],
            "command": "manage.py " + " ".join(command),
        }
    finally:
        ledger.unlink(missing_ok=True)


# -- the table ----------------------------------------------------------------------

OPERATION_ROWS = (
    ("enqueue(), slot free: a new key each call", "enqueue_unlimited", "enqueue_free_new_key"),
    ("enqueue(), slot free: one key, limit 10^9", "enqueue_unlimited", "enqueue_free_shared_key"),
    ("enqueue(), blocked: the key's 2 slots held", "enqueue_unlimited", "enqueue_blocked"),
    ("complete_job, hands its slot on to a blocked job", "complete_unlimited", "complete_hand_on"),
    ("complete + claim the next job, as a busy thread [w]", "cycle_unlimited", "cycle_limited"),
)


def table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    load = f"{machine['loadavg_start'][0]:.1f} -> {machine['loadavg_end'][0]:.1f}"
    operations, drain = results["operations"], results["drain"]
    unlimited, limited = drain["unlimited"], drain["limited"]
    ms = operations["median_ms"]
    lines = [
        "",
        f"{results['database']} ({results['server_version']}), "
        f"{'quick' if results['quick'] else 'full'} run, {machine['cores']} cores, "
        f"load {load}, took {results['duration_seconds']:.0f}s",
        f"{'metric':<56} {'unlimited':>10} {'limited':>10} {'ratio':>7}",
        f"median ms per call, N={operations['runs']} each [r]; ratio limited/unlimited:",
    ]
    if results["git_end"] != results["git"]:
        lines.insert(2, "WARNING: the working tree changed during the run; figures mix versions")
    for label, ours, theirs in OPERATION_ROWS:
        lines.append(_line(f"  {label}", ms[ours], ms[theirs], ms[theirs] / ms[ours]))
    lines.append(
        f"drain jobs/s, N={limited['count']}, limit {limited['limit']} over {KEYS} keys [d]; "
        "ratio limited/unlimited:"
    )
    for label, field in (
        ("subprocess start -> last job finished", "jobs_per_s"),
        ("first start -> last finish", "busy_jobs_per_s"),
    ):
        ratio = limited[field] / unlimited[field]
        lines.append(_line(f"  {label}", unlimited[field], limited[field], ratio))
    lines.append("most jobs of one key running at once (max over keys) [o]:")
    for label, field in (
        ("ledger: task start -> end", "max_per_key_ledger"),
        ("rows: started_at -> finished_at", "max_per_key_rows"),
    ):
        most = max(unlimited[field].values()), max(limited[field].values())
        lines.append(f"  {label:<54} {most[0]:>10} {most[1]:>10}")
    lines.append(f"  per key, limited, ledger: {_per_key(limited['max_per_key_ledger'])}")
    lines.append(f"  per key, limited, rows:   {_per_key(limited['max_per_key_rows'])}")
    if unlimited["server_counters"]:
        lines.append("counted by the server during the drain (* server-wide):")
        for name in unlimited["server_counters"]:
            counted = unlimited["server_counters"][name], limited["server_counters"][name]
            lines.append(f"  {name:<54} {counted[0]:>10} {counted[1]:>10}")
    for run, figures in drain.items():
        trouble = figures["runtime_trouble"]
        if trouble:
            lines.append(f"runtime log, {run} drain: {len(trouble)} line(s) of trouble, e.g.")
            lines += [f"  {line[:160]}" for line in trouble[:5]]
    lines += [
        f"[r] {ROUNDS} rounds of N/{ROUNDS} calls, the eight cases taking turns (order reversed",
        "    every other round); the claim before a completion is not timed",
        "[w] complete_and_claim_next: one transaction (unlimited on PostgreSQL: one statement);",
        "    limited: the slot handed on first, in that transaction (PostgreSQL: in a",
        "    transaction of its own, then the claim's one statement)",
        f"[d] {limited['command']} (1 worker process x 4 threads), N jobs pre-enqueued",
        f"[o] a sweep over the ledger each job appends to, and over the job rows; limit "
        f"{limited['limit']}",
    ]
    return "\n".join(lines)


def _line(label: str, unlimited: float, limited: float, ratio: float) -> str:
    return f"{label:<56} {_number(unlimited):>10} {_number(limited):>10} {ratio:>7.2f}"


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _per_key(figures: dict[str, int]) -> str:
    return ", ".join(f"{key} {most}" for key, most in figures.items())


if __name__ == "__main__":
    sys.exit(main())
