"""Checks of the queue tables' invariants, used after every kind of test."""

from __future__ import annotations

from collections import Counter

from dj_queue.models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    ReadyExecution,
    ScheduledExecution,
)

STATE_TABLES = {
    "ready": ReadyExecution,
    "scheduled": ScheduledExecution,
    "claimed": ClaimedExecution,
    "blocked": BlockedExecution,
    "failed": FailedExecution,
}


def job_states(using: str = "default") -> dict[str, list[str]]:
    """Every job id with the names of the state tables holding a row for it."""
    states: dict[str, list[str]] = {
        str(pk): [] for pk in Job.objects.using(using).values_list("pk", flat=True)
    }
    for name, model in STATE_TABLES.items():
        for job_id in model.objects.using(using).values_list("job_id", flat=True):
            states.setdefault(str(job_id), []).append(name)
    return states


def state_of(job_id, using: str = "default") -> str:
    """One word for where a job stands: a state table's name, 'finished' or 'missing'."""
    names = [
        name
        for name, model in STATE_TABLES.items()
        if model.objects.using(using).filter(job_id=job_id).exists()
    ]
    assert len(names) <= 1, f"job {job_id} is in {names}"
    if names:
        return names[0]
    job = Job.objects.using(using).filter(pk=job_id).first()
    if job is None:
        return "missing"
    assert job.finished_at is not None, f"job {job_id} has no state row and is not finished"
    return "finished"


def assert_invariants(using: str = "default") -> Counter[str]:
    """Each job has at most one state row, a job without one is finished, and a
    failed job is finished too. Returns how many jobs are in each state."""
    counts: Counter[str] = Counter()
    finished = dict(Job.objects.using(using).values_list("pk", "finished_at"))
    finished = {str(k): v for k, v in finished.items()}
    for job_id, names in job_states(using).items():
        assert job_id in finished, f"state rows {names} for missing job {job_id}"
        assert len(names) <= 1, f"job {job_id} is in several states: {names}"
        if not names:
            assert finished[job_id] is not None, (
                f"job {job_id} has no state row and is not finished"
            )
            counts["finished"] += 1
        else:
            if names[0] == "failed":
                assert finished[job_id] is not None, f"failed job {job_id} has no finished_at"
            counts[names[0]] += 1
    return counts
