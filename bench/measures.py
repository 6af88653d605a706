"""The four measurements. Each starts from empty tables and returns plain data.

Also run by bench/peer_child.py inside the peer's virtualenv, on the peer's system.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.harness import Runtime, counter_change, empty_tables, innodb_counters, poll
from bench.systems import System, describe_commands

BATCH_SIZE = 500
ROUNDS = 5
WARMUP_JOBS = 20
LATENCY_RATE = 20.0  # jobs per second
SETTLE_SECONDS = 0.5  # after the warm-up job, so the runtime is idle-polling again


Measure = Callable[[int], dict[str, Any]]  # a count of jobs -> its figures


def interleaved(
    contenders: Mapping[str, Measure], count: int, *, rotation: int = 0
) -> dict[str, dict[str, Any]]:
    """``count`` jobs per system in ROUNDS rounds, the systems taking turns in an order
    that rotates every round, so a burst of background load hits them all; the median
    round counts."""
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in contenders}
    for index in range(ROUNDS):
        for key in rotated(list(contenders), rotation + index):
            samples[key].append(contenders[key](count // ROUNDS))
    return {key: _summary(rounds) for key, rounds in samples.items()}


def rotated[T](items: Sequence[T], by: int) -> list[T]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def enqueue_throughput(system: System, count: int) -> dict[str, Any]:
    _warm_up(system)
    started = time.perf_counter()
    for _ in range(count):
        system.enqueue_one()
    return _throughput(count, time.perf_counter() - started)


def bulk_throughput(system: System, count: int) -> dict[str, Any]:
    _warm_up(system, bulk=True)
    started = time.perf_counter()
    for start in range(0, count, BATCH_SIZE):
        system.enqueue_batch(min(BATCH_SIZE, count - start))
    return _throughput(count, time.perf_counter() - started)


def drain(system: System, count: int, processes: int, env: dict[str, str]) -> dict[str, Any]:
    """Jobs/s from starting the runtime until the last pre-enqueued job is finished."""
    empty_tables()
    system.prefill(count)
    label = f"{system.key}_drain_{processes}"
    commands = system.runtime_commands(processes, drain=True)
    counters = innodb_counters()
    with Runtime(label, commands, env, interpreter=system.interpreter) as runtime:
        poll(lambda: _all_done(system, runtime), timeout=60 + count / 10)
        elapsed = time.monotonic() - runtime.started
        counters = counter_change(counters, innodb_counters())
    _require_no_failures(system)
    first, last = system.window()
    busy = (last - first).total_seconds()
    return {
        **_throughput(count, elapsed),
        # The same, without the runtime's start-up: first claim to last finish.
        "busy_jobs_per_s": count / busy,
        "busy_seconds": busy,
        "startup_seconds": first.timestamp() - runtime.started_wall,
        "window": system.window_text,
        "commands": describe_commands(system, processes, drain=True),
        # MariaDB only: counted server-wide from before the runtime started to the last job.
        **({"innodb": counters} if counters else {}),
    }


def latency(system: System, count: int, env: dict[str, str]) -> dict[str, Any]:
    """Enqueue-to-start delay of jobs paced at LATENCY_RATE into an idle runtime."""
    empty_tables()
    commands = system.runtime_commands(1, drain=False)
    label = f"{system.key}_latency"
    with Runtime(label, commands, env, interpreter=system.interpreter) as runtime:
        system.enqueue_one()
        poll(lambda: _all_done(system, runtime), timeout=60)
        time.sleep(SETTLE_SECONDS)
        ids = _paced_enqueue(system, count)
        poll(lambda: _all_done(system, runtime), timeout=60 + count / LATENCY_RATE)
    _require_no_failures(system)
    delays = system.start_delays_ms(ids)
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {
        "count": count,
        "rate_per_s": LATENCY_RATE,
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "mean_ms": statistics.fmean(delays),
        "max_ms": max(delays),
        "commands": describe_commands(system, 1, drain=False),
    }


def _warm_up(system: System, *, bulk: bool = False) -> None:
    # First calls pay for imports, query compilation and connecting; then start clean.
    empty_tables()
    if bulk:
        system.enqueue_batch(WARMUP_JOBS)
    else:
        for _ in range(WARMUP_JOBS):
            system.enqueue_one()
    empty_tables()


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    count = sum(sample["count"] for sample in rounds)
    seconds = sum(sample["seconds"] for sample in rounds)
    rates = [sample["jobs_per_s"] for sample in rounds]
    return {
        "count": count,
        "seconds": seconds,
        "jobs_per_s": statistics.median(rates),
        "overall_jobs_per_s": count / seconds,
        "round_jobs_per_s": rates,
    }


def _throughput(count: int, seconds: float) -> dict[str, Any]:
    return {"count": count, "seconds": seconds, "jobs_per_s": count / seconds}


def _all_done(system: System, runtime: Runtime) -> bool:
    runtime.check_alive(allow_clean_exit=True)
    if system.unfinished() == 0:
        return True
    if runtime.all_exited():
        raise RuntimeError(f"{runtime.label}: every process exited with jobs left unfinished")
    return False


def _require_no_failures(system: System) -> None:
    failed = system.failed()
    if failed:
        raise RuntimeError(f"{system.name}: {failed} job(s) failed; a no-op must not fail")


def _paced_enqueue(system: System, count: int) -> list[str]:
    ids = []
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / LATENCY_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ids.append(system.enqueue_one())
    return ids
