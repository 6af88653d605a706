"""The registry of runtime processes: register, heartbeat, deregister, prune."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from functools import partial
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from ..db.clock import DatabaseNow
from ..exceptions import ProcessExitError, ProcessPrunedError
from ..models import ClaimedExecution, Process
from .jobs import JobError, fail_claims
from .transactions import in_transaction


def register_process(
    alias: str,
    *,
    kind: str,
    name: str,
    backend_alias: str,
    metadata: dict[str, Any] | None = None,
    supervisor_id: int | None = None,
) -> Process:
    def write() -> Process:
        process = Process.objects.using(alias).create(
            kind=kind,
            name=name,
            backend_alias=backend_alias,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            metadata=metadata or {},
            supervisor_id=supervisor_id,
            last_heartbeat_at=DatabaseNow(),
            created_at=timezone.now(),
        )
        process.refresh_from_db(using=alias, fields=["last_heartbeat_at"])
        return process

    return in_transaction(alias, write)


def heartbeat(alias: str, process_id: int) -> bool:
    """Stamp the process as alive with the database clock; False if its row is gone."""
    updated = in_transaction(
        alias,
        lambda: (
            Process.objects.using(alias)
            .filter(pk=process_id)
            .update(last_heartbeat_at=DatabaseNow())
        ),
    )
    return bool(updated)


def deregister_process(alias: str, process_id: int, *, reason: str = "stopped") -> int:
    """Remove a process row, failing any job it still holds. Returns how many it failed."""
    error = JobError.from_exception(
        ProcessExitError(f"The process running this job {reason} before the job finished.")
    )
    return in_transaction(alias, lambda: _remove_process(alias, process_id, error))


def deregister_process_named(alias: str, name: str, *, reason: str) -> int:
    """Deregister the process called ``name`` if its row is still there (it died
    without deregistering itself), failing its jobs. Returns how many it failed."""
    error = JobError.from_exception(
        ProcessExitError(f"The process running this job {reason} before the job finished.")
    )

    def write() -> int:
        process_id = (
            Process.objects.using(alias)
            .select_for_update()
            .filter(name=name)
            .values_list("pk", flat=True)
            .first()
        )
        return 0 if process_id is None else _remove_process(alias, process_id, error)

    return in_transaction(alias, write)


def fail_orphaned_claims(alias: str) -> int:
    """Fail claimed jobs whose process row no longer exists. Returns how many."""
    error = JobError.from_exception(
        ProcessExitError("The process running this job disappeared without a trace.")
    )

    def write() -> int:
        orphans = (
            ClaimedExecution.objects.using(alias)
            .select_for_update()
            .filter(~Exists(Process.objects.filter(pk=OuterRef("process_id"))))
        )
        return fail_claims(alias, list(orphans), error)

    return in_transaction(alias, write)


def prune_dead_processes(
    alias: str, *, alive_threshold: float, exclude_id: int | None = None
) -> int:
    """Deregister processes whose last heartbeat is older than ``alive_threshold``
    seconds by the database clock, failing their claimed jobs. Returns how many."""
    error = JobError.from_exception(
        ProcessPrunedError(
            f"The process running this job sent no heartbeat for over {alive_threshold:g}s "
            "and was presumed dead."
        )
    )

    def stale() -> QuerySet[Process]:
        cutoff = DatabaseNow() - timedelta(seconds=alive_threshold)
        processes = Process.objects.using(alias).filter(last_heartbeat_at__lt=cutoff)
        return processes.exclude(pk=exclude_id) if exclude_id is not None else processes

    def prune_one(process_id: int) -> int:
        # Checked again under lock: the process may have heartbeated meanwhile.
        if not stale().select_for_update().filter(pk=process_id).exists():
            return 0
        _remove_process(alias, process_id, error)
        return 1

    candidates = list(stale().values_list("pk", flat=True))
    return sum(in_transaction(alias, partial(prune_one, pid)) for pid in candidates)


def _remove_process(alias: str, process_id: int, error: JobError) -> int:
    claims = ClaimedExecution.objects.using(alias).select_for_update().filter(process_id=process_id)
    failed = fail_claims(alias, list(claims), error)
    processes = Process.objects.using(alias)
    processes.filter(supervisor_id=process_id).update(supervisor=None)
    processes.filter(pk=process_id)._raw_delete(alias)
    return failed
