"""Dispatchers move due scheduled jobs to ready."""

from __future__ import annotations

from typing import Any

from ..config import DispatcherConfig, QueueConfig
from ..operations.scheduling import promote_due_jobs
from .actor import Actor
from .silence import polling


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

    def metadata(self) -> dict[str, Any]:
        return {
            "batch_size": self.dispatcher.batch_size,
            "polling_interval": self.dispatcher.polling_interval,
        }

    def step(self) -> None:
        with polling(self.config.silence_polling):
            promoted = promote_due_jobs(
                self.alias,
                batch_size=self.dispatcher.batch_size,
                skip_locked=self.config.use_skip_locked,
                notify=self.config.listen_notify,
            )
        # A full batch means more may be due: go again at once.
        if promoted < self.dispatcher.batch_size:
            self.sleep(self.dispatcher.polling_interval)
