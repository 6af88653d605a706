"""Dispatchers move due scheduled jobs to ready and keep concurrency limits moving."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..config import DispatcherConfig, QueueConfig
from ..operations.concurrency import run_concurrency_maintenance
from ..operations.scheduling import promote_due_jobs
from ..operations.tallies import compact_tallies
from .actor import Actor
from .silence import polling

logger = logging.getLogger("dj_queue")

# Seconds between two merges of the finished-jobs tally: its rows of a minute
# are merged soon after the minute ends.
TALLY_COMPACTION_INTERVAL = 30.0


class Dispatcher(Actor):
    kind = "dispatcher"

    def __init__(
        self,
        *,
        backend_alias: str,
        config: QueueConfig,
        dispatcher: DispatcherConfig,
        supervisor_id: int | None = None,
    ) -> None:
        super().__init__(backend_alias=backend_alias, config=config, supervisor_id=supervisor_id)
        self.dispatcher = dispatcher
        # Maintenance runs at the first step too: a restart after a crash
        # frees stuck keys at once instead of an interval later.
        self._next_maintenance = time.monotonic()
        self._next_compaction = time.monotonic()

    def metadata(self) -> dict[str, Any]:
        return {
            "batch_size": self.dispatcher.batch_size,
            "polling_interval": self.dispatcher.polling_interval,
            "concurrency_maintenance": self.dispatcher.concurrency_maintenance,
            "concurrency_maintenance_interval": self.dispatcher.concurrency_maintenance_interval,
        }

    def step(self) -> None:
        if self.dispatcher.concurrency_maintenance and time.monotonic() >= self._next_maintenance:
            self._next_maintenance = (
                time.monotonic() + self.dispatcher.concurrency_maintenance_interval
            )
            with polling(self.config.silence_polling):
                report = run_concurrency_maintenance(
                    self.alias, batch_size=self.dispatcher.batch_size
                )
            if report.expired_semaphores or report.released_jobs:
                logger.info(
                    "concurrency maintenance expired %d semaphore(s), released %d blocked job(s)",
                    report.expired_semaphores,
                    report.released_jobs,
                )
        if time.monotonic() >= self._next_compaction:
            self._next_compaction = time.monotonic() + TALLY_COMPACTION_INTERVAL
            with polling(self.config.silence_polling):
                compact_tallies(self.alias, self.backend_alias)
        with polling(self.config.silence_polling):
            promoted = promote_due_jobs(
                self.alias,
                batch_size=self.dispatcher.batch_size,
                skip_locked=self.config.use_skip_locked,
                notify=self.config.listen_notify,
                preserve_finished=self.config.preserve_finished_jobs,
            )
        # A full batch means more may be due: go again at once.
        if promoted < self.dispatcher.batch_size:
            self.sleep(self.dispatcher.polling_interval)
