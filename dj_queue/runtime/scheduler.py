"""The scheduler runs the periodic housekeeping of a backend: deleting
finished jobs once they are older than ``clear_finished_jobs_after``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.utils import timezone

from ..config import QueueConfig
from ..operations.jobs import delete_finished_jobs
from .actor import Actor

# Finished jobs age slowly: looking more often than this buys nothing.
CLEANUP_INTERVAL = 60.0


def scheduler_has_work(config: QueueConfig) -> bool:
    return config.clear_finished_jobs_after is not None


class Scheduler(Actor):
    kind = "scheduler"

    def __init__(
        self, *, backend_alias: str, config: QueueConfig, supervisor_id: int | None = None
    ) -> None:
        super().__init__(backend_alias=backend_alias, config=config, supervisor_id=supervisor_id)
        self._next_cleanup = 0.0

    def metadata(self) -> dict[str, Any]:
        return {
            "polling_interval": self.config.scheduler.polling_interval,
            "clear_finished_jobs_after": self.config.clear_finished_jobs_after,
        }

    def step(self) -> None:
        clear_after = self.config.clear_finished_jobs_after
        if clear_after is not None and time.monotonic() >= self._next_cleanup:
            delete_finished_jobs(
                self.alias, finished_before=timezone.now() - timedelta(seconds=clear_after)
            )
            self._next_cleanup = time.monotonic() + min(CLEANUP_INTERVAL, clear_after)
        self.sleep(self.config.scheduler.polling_interval)
