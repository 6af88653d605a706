"""The ledger against the queue tables: what a scenario's table reports.

Read after the nodes stopped, so nothing moves while the tables are read; the
stuck claims are counted while the nodes still run (``stuck_claims``)."""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dj_queue.models import ClaimedExecution, FailedExecution, Job, RecurringExecution
from tests.invariants import assert_invariants

from .faults import FaultLog
from .ledger import Run, read, runs, runs_by_job
from .nodes import alive

DEATHS = ("dj_queue.exceptions.ProcessExitError", "dj_queue.exceptions.ProcessPrunedError")


@dataclass
class Report:
    """One scenario's figures; ``problems`` lists every invariant it broke."""

    scenario: str
    database: str
    enqueued: int = 0
    successful: int = 0
    failed: int = 0
    lost: int = 0
    duplicates: int = 0
    duplicate_bound: int = 0
    stuck: int = 0
    violations: int | None = None
    double_fires: int | None = None
    recovery_seconds: float | None = None
    faults: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        self.problems.append(text)


def stuck_claims() -> int:
    """Claims whose process row is gone or whose process is dead on this host,
    read in one statement."""
    host = socket.gethostname()
    rows = ClaimedExecution.objects.values_list("process__pid", "process__hostname")
    return sum(1 for pid, hostname in rows if hostname == host and not alive(pid))


def _deaths(errors: list[dict] | None) -> int:
    return sum(1 for error in errors or () if error.get("exception_class_path") in DEATHS)


def judge(
    report: Report,
    ledger_dir: Path,
    faults: FaultLog,
    job_ids: set[str],
    *,
    retries_allowed: bool = True,
    limit: int | None = None,
) -> Report:
    """Fill ``report`` from the ledger and the tables for the jobs ``job_ids``."""
    try:
        assert_invariants()
    except AssertionError as exc:
        report.problem(f"state invariant: {exc}")
    rows = {
        str(pk): (finished_at, errors, worker_ids)
        for pk, finished_at, errors, worker_ids in Job.objects.filter(pk__in=job_ids).values_list(
            "pk", "finished_at", "errors", "worker_ids"
        )
    }
    failed_ids = {
        str(pk)
        for pk in FailedExecution.objects.filter(job_id__in=job_ids).values_list(
            "job_id", flat=True
        )
    }
    all_runs = [run for run in runs(read(ledger_dir)) if run.job in job_ids]
    by_job = runs_by_job(all_runs)
    report.enqueued = len(job_ids)
    missing = job_ids - rows.keys()
    if missing:
        report.problem(f"{len(missing)} enqueued job(s) have no row")
    unfinished = [job for job, (finished_at, _, _) in rows.items() if finished_at is None]
    report.lost = len(unfinished) + len(missing)
    report.failed = len(failed_ids)
    report.successful = len(rows) - len(unfinished) - report.failed
    report.duplicate_bound = sum(_deaths(errors) for _, errors, _ in rows.values())

    unexplained = ran_twice = phantom = no_run = 0
    for job, (finished_at, errors, worker_ids) in rows.items():
        job_runs = by_job.get(job, [])
        ended = [run for run in job_runs if run.ended is not None]
        if len(ended) > 1:
            report.duplicates += 1
            if len(ended) - 1 > _deaths(errors):
                unexplained += 1
        if len(job_runs) > len(worker_ids or ()):
            phantom += 1
        if not retries_allowed and len(job_runs) > 1:
            ran_twice += 1
        if finished_at is not None and job not in failed_ids:
            # A success is the outcome of the job's last attempt, which ran to its end.
            final = len(worker_ids or ())
            if not any(run.attempt == final for run in ended):
                no_run += 1
    if report.lost:
        report.problem(f"{report.lost} job(s) lost (never finished)")
    if report.duplicates > report.duplicate_bound:
        report.problem(
            f"{report.duplicates} duplicate(s) above the bound of {report.duplicate_bound}"
        )
    if unexplained:
        report.problem(f"{unexplained} job(s) ran to the end twice with no process death between")
    if phantom:
        report.problem(f"{phantom} job(s) ran more often than the queue claimed them")
    if ran_twice:
        report.problem(f"{ran_twice} job(s) without retries started more than once")
    if no_run:
        report.problem(f"{no_run} job(s) recorded successful by an attempt that did not end")
    if retries_allowed and report.failed:
        report.problem(f"{report.failed} job(s) failed although their task allows retries")
    if not retries_allowed:
        interrupted = {run.job for run in all_runs if run.ended is None}
        not_failed = {job for job in interrupted if job not in failed_ids}
        if not_failed:
            report.problem(f"{len(not_failed)} interrupted job(s) without retries are not FAILED")
    if report.stuck:
        report.problem(f"{report.stuck} claim(s) stuck with no live process")
    if limit is not None:
        report.violations = limit_violations(all_runs, faults, limit)
        if report.violations:
            report.problem(f"concurrency limit {limit} exceeded {report.violations} time(s)")
    report.recovery_seconds = recovery_seconds(faults)
    unsettled = [f for f in faults.faults if f.settled_at is None]
    if unsettled:
        kinds = sorted({f.kind for f in unsettled})
        report.problem(f"{len(unsettled)} fault(s) ({', '.join(kinds)}) never settled")
    report.faults = len(faults.faults)
    if faults.errors:
        report.notes["fault errors"] = faults.errors[:5]
    return report


def limit_violations(all_runs: list[Run], faults: FaultLog, limit: int) -> int:
    """Starts that found ``limit`` runs of their key already running. A run with
    no end ran until its process was killed."""
    deaths = faults.death_times()
    events: list[tuple[float, int, str]] = []
    for run in all_runs:
        if run.key is None:
            continue
        end = run.ended if run.ended is not None else deaths.get(run.pid)
        if end is None:
            continue  # a run cut short by no recorded fault: not counted either way
        events.append((run.started, 1, run.key))
        events.append((end, -1, run.key))
    # Ends sort before starts at the same instant.
    events.sort(key=lambda event: (event[0], event[1]))
    running: Counter[str] = Counter()
    violations = 0
    for _, step, key in events:
        running[key] += step
        if step > 0 and running[key] > limit:
            violations += 1
    return violations


def recovery_seconds(faults: FaultLog) -> float | None:
    """The longest wait, over the faults, for the queue to go on as before: after a
    kill or a freeze, until the claims of the processes it stopped were settled
    (their jobs retried or failed); after an outage, from the server's return
    until the next job was recorded finished."""
    waits = [
        fault.settled_at - (fault.back_at or fault.at)
        for fault in faults.faults
        if fault.settled_at is not None
    ]
    return max(waits) if waits else None


def double_fires(task_path: str, ledger_dir: Path) -> tuple[int, int, Counter[str]]:
    """(double-fired slots, slots fired, slots per key) of the recurring jobs of
    ``task_path``: a slot fired twice shows as two jobs for one (key, time), or as a
    job with no slot row of its own."""
    jobs = {
        str(pk): kwargs.get("key")
        for pk, kwargs in Job.objects.filter(task_path=task_path).values_list("pk", "kwargs")
    }
    slots = {
        str(job_id): (key, run_at)
        for job_id, key, run_at in RecurringExecution.objects.filter(
            job_id__isnull=False
        ).values_list("job_id", "task_key", "run_at")
    }
    per_slot = Counter(slots[job] for job in jobs if job in slots)
    without_slot = sum(1 for job in jobs if job not in slots)
    ran = {run.job for run in runs(read(ledger_dir))}
    ran_without_row = len(ran - jobs.keys())
    doubled = sum(count - 1 for count in per_slot.values()) + without_slot + ran_without_row
    per_key = Counter(key for key, _ in per_slot)
    return doubled, len(per_slot), per_key
