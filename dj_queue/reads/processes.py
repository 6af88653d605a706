"""The runtime's registered processes and the jobs each holds."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from ..models import ClaimedExecution, Process
from .figures import COUNT_CAP, BoundedCount, ProcessSummary

# Processes listed at most, and job ids named per process.
MAX_PROCESSES = 500
HELD_IDS_SHOWN = 5


def process_summaries(
    alias: str,
    backend_alias: str,
    *,
    now: datetime | None = None,
    cap: int = COUNT_CAP,
    job_ids: bool = True,
) -> tuple[ProcessSummary, ...]:
    """``backend_alias``'s processes by kind and name, with what they hold.
    Heartbeat ages are told by this host's clock against the database's
    (heartbeats are written with it): a few seconds of skew show as such."""
    now = now or timezone.now()
    processes = list(
        Process.objects.using(alias)
        .filter(backend_alias=backend_alias)
        .order_by("kind", "name")
        .values_list("id", "kind", "name", "hostname", "pid", "last_heartbeat_at")[:MAX_PROCESSES]
    )
    ids = [row[0] for row in processes]
    claims = ClaimedExecution.objects.using(alias).filter(process_id__in=ids)
    held = {
        row["process_id"]: row["held"]
        for row in claims.values("process_id").annotate(held=Count("pk")).order_by()
    }
    named: dict[int, list[uuid.UUID]] = defaultdict(list)
    if job_ids and held:
        # The oldest claims first: the jobs that have run longest.
        rows = claims.order_by("pk").values_list("process_id", "job_id")
        for process_id, job_id in rows[: min(sum(held.values()), cap)]:
            if len(named[process_id]) < HELD_IDS_SHOWN:
                named[process_id].append(job_id)
    return tuple(
        ProcessSummary(
            id=process_id,
            kind=kind,
            name=name,
            hostname=hostname,
            pid=pid,
            heartbeat_age=max(0.0, (now - heartbeat).total_seconds()),
            held=BoundedCount(held.get(process_id, 0)),
            held_job_ids=tuple(named.get(process_id, ())),
        )
        for process_id, kind, name, hostname, pid, heartbeat in processes
    )
