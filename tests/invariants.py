"""Checks of the queue tables' invariants, used after every kind of test.

Each check reads the tables in a single statement: a statement sees one snapshot
on every supported database, so a transition committing while the check runs
cannot make a job look as if it had no state or two.
"""

from __future__ import annotations

from collections import Counter

from django.db.models import Exists, OuterRef

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


def _snapshot(using: str, **filters) -> list[tuple]:
    """(job id, finished_at, state names) for each job, read in one statement."""
    jobs = Job.objects.using(using).filter(**filters)
    annotations = {
        f"in_{name}": Exists(model.objects.filter(job_id=OuterRef("pk")))
        for name, model in STATE_TABLES.items()
    }
    rows = jobs.annotate(**annotations).values_list("pk", "finished_at", *annotations)
    return [
        (
            str(pk),
            finished_at,
            [name for name, held in zip(STATE_TABLES, held_by, strict=True) if held],
        )
        for pk, finished_at, *held_by in rows
    ]


def job_states(using: str = "default") -> dict[str, list[str]]:
    """Every job id with the names of the state tables holding a row for it.
    (A state row always has its job: every state table has a foreign key to it.)"""
    return {job_id: names for job_id, _, names in _snapshot(using)}


def state_of(job_id, using: str = "default") -> str:
    """One word for where a job stands: a state table's name, 'finished' or 'missing'."""
    rows = _snapshot(using, pk=job_id)
    if not rows:
        return "missing"
    _, finished_at, names = rows[0]
    assert len(names) <= 1, f"job {job_id} is in {names}"
    if names:
        return names[0]
    assert finished_at is not None, f"job {job_id} has no state row and is not finished"
    return "finished"


def assert_invariants(using: str = "default") -> Counter[str]:
    """Each job has at most one state row, a job without one is finished, and a
    failed job is finished too. Returns how many jobs are in each state."""
    counts: Counter[str] = Counter()
    for job_id, finished_at, names in _snapshot(using):
        assert len(names) <= 1, f"job {job_id} is in several states: {names}"
        if not names:
            assert finished_at is not None, f"job {job_id} has no state row and is not finished"
            counts["finished"] += 1
        else:
            if names[0] == "failed":
                assert finished_at is not None, f"failed job {job_id} has no finished_at"
            counts[names[0]] += 1
    return counts
