"""The scheduler fires recurring tasks and runs a backend's housekeeping.

At start it syncs the static recurring tasks of its configuration to the table;
then, each round, it reads the table again (so dynamic changes take effect
within ``scheduler.polling_interval``), fires every task whose latest scheduled
time has come since its last firing, and deletes finished jobs older than
``clear_finished_jobs_after``. It sleeps until the next scheduled time or the
polling interval, whichever comes first.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, tzinfo
from typing import Any

from django.utils import timezone

from ..config import QueueConfig
from ..cron import Schedule, due_slot, time_zone
from ..operations.jobs import delete_finished_jobs
from ..operations.recurring import (
    delete_stale_executions,
    fire,
    recurring_tasks,
    sync_static_tasks,
)
from .actor import Actor
from .silence import polling

logger = logging.getLogger("dj_queue")

# Finished jobs age slowly: looking more often than this buys nothing.
CLEANUP_INTERVAL = 60.0


def scheduler_has_work(config: QueueConfig) -> bool:
    return (
        config.clear_finished_jobs_after is not None
        or bool(config.recurring)
        or config.scheduler.dynamic_tasks_enabled
    )


class Scheduler(Actor):
    kind = "scheduler"

    def __init__(
        self,
        *,
        backend_alias: str,
        config: QueueConfig,
        supervisor_id: int | None = None,
    ) -> None:
        super().__init__(backend_alias=backend_alias, config=config, supervisor_id=supervisor_id)
        self._next_cleanup = 0.0
        self._synced = False
        self._zone: tzinfo = time_zone(config.scheduler.time_zone)
        # The slot of each key whose firing failed, reported once rather than
        # every round (slots only move forward, so one per key is enough).
        self._failed: dict[str, datetime] = {}
        self._broken: set[tuple[str, str]] = set()  # (key, schedule) reported as unreadable

    def metadata(self) -> dict[str, Any]:
        return {
            "polling_interval": self.config.scheduler.polling_interval,
            "clear_finished_jobs_after": self.config.clear_finished_jobs_after,
            "recurring_tasks": len(self.config.recurring),
            "dynamic_tasks_enabled": self.config.scheduler.dynamic_tasks_enabled,
            "time_zone": str(self._zone),
        }

    def step(self) -> None:
        if not self._synced:
            self._sync()
        next_due = self._fire_due()
        self._clean_up()
        wait = self.config.scheduler.polling_interval
        if next_due is not None:
            wait = min(wait, max(0.0, (next_due - timezone.now()).total_seconds()))
        self.sleep(wait)

    def _sync(self) -> None:
        from django.tasks import task_backends

        from ..recurring import static_definitions

        definitions = static_definitions(
            task_backends[self.backend_alias],  # type: ignore[arg-type]
            self.config.recurring,
        )
        report = sync_static_tasks(self.alias, definitions)
        self._synced = True
        if report.added or report.changed or report.removed:
            logger.info(
                "recurring tasks synced: %d added, %d changed, %d removed",
                report.added,
                report.changed,
                report.removed,
            )

    def _fire_due(self) -> datetime | None:
        """Fire what is due; returns the soonest scheduled time still ahead."""
        dynamic = self.config.scheduler.dynamic_tasks_enabled
        with polling(self.config.silence_polling):
            tasks = recurring_tasks(self.alias, dynamic=dynamic)
        now = timezone.now()
        soonest: datetime | None = None
        for task in tasks:
            schedule = Schedule(task.schedule, self._zone)
            try:
                slot = due_slot(
                    schedule, now, last_run_at=task.last_run_at, changed_at=task.updated_at
                )
                upcoming = schedule.following(now)
            except (ValueError, KeyError) as exc:  # a row holding a bad expression
                if (task.key, task.schedule) not in self._broken:
                    self._broken.add((task.key, task.schedule))
                    logger.error("recurring task %s has a bad schedule: %s", task.key, exc)
                continue
            soonest = upcoming if soonest is None else min(soonest, upcoming)
            if slot is None or self._failed.get(task.key) == slot:
                continue
            try:
                job_id = fire(self.alias, self.backend_alias, task.key, slot)
            except Exception as exc:  # the task's code or arguments, not the scheduler
                self._report(task.key, slot, exc)
                continue
            if job_id is not None:
                logger.info(
                    "recurring task %s fired for %s: job %s",
                    task.key,
                    slot.isoformat(),
                    job_id,
                )
        return soonest

    def _report(self, key: str, slot: datetime, exc: BaseException) -> None:
        from django.db import DatabaseError

        if isinstance(exc, DatabaseError):
            raise exc  # the actor's loop backs off and tries again
        self._failed[key] = slot
        logger.error("recurring task %s could not fire for %s: %s", key, slot, exc)

    def _clean_up(self) -> None:
        clear_after = self.config.clear_finished_jobs_after
        if clear_after is None or time.monotonic() < self._next_cleanup:
            return
        cutoff = timezone.now() - timedelta(seconds=clear_after)
        delete_finished_jobs(self.alias, finished_before=cutoff)
        delete_stale_executions(self.alias, before=cutoff)
        self._next_cleanup = time.monotonic() + min(CLEANUP_INTERVAL, clear_after)
