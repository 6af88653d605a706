"""Workers claim ready jobs and run them on a pool of threads."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError

from ..config import QueueConfig, WorkerConfig
from ..db import get_driver
from ..models import Job
from ..operations.claims import Claimant, claim_jobs
from .actor import Actor
from .execution import ExecutionContext, execute_job
from .pool import ExecutionPool
from .silence import polling
from .wakeups import ReadyListener

logger = logging.getLogger("dj_queue")


class Worker(Actor):
    kind = "worker"

    def __init__(
        self,
        *,
        backend_alias: str,
        config: QueueConfig,
        worker: WorkerConfig,
        supervisor_id: int | None = None,
    ) -> None:
        super().__init__(backend_alias=backend_alias, config=config, supervisor_id=supervisor_id)
        self.worker = worker
        self._pool: ExecutionPool[Job] | None = None
        self.listener: ReadyListener | None = None
        # Set while every thread is busy: a finishing job then wakes the claim loop.
        self._saturated = False

    def metadata(self) -> dict[str, Any]:
        return {
            "queues": list(self.worker.queues),
            "threads": self.worker.threads,
            "polling_interval": self.worker.polling_interval,
        }

    def _job_done(self) -> None:
        if self._saturated:
            self.wake()

    def _pool_or_start(self) -> ExecutionPool[Job]:
        if self._pool is None:
            self._start_listener()
            context = ExecutionContext(
                alias=self.alias,
                process_id=self._process_id(),
                preserve_finished_jobs=self.config.preserve_finished_jobs,
                stopping=lambda: self.stopping,
                claimant=Claimant(
                    process_id=self._process_id(),
                    worker_id=self.name,
                    selectors=self.worker.queues,
                    skip_locked=self.config.use_skip_locked,
                ),
                claim_next=lambda: self._saturated and not self.stopping,
            )
            self._pool = ExecutionPool(
                self.worker.threads,
                lambda job: execute_job(job, context),
                self._job_done,
                name=self.name,
                next_item=self._claim_next,
            )
        return self._pool

    def _claim(self, limit: int) -> list[Job]:
        with polling(self.config.silence_polling):
            return claim_jobs(
                self.alias,
                process_id=self._process_id(),
                worker_id=self.name,
                selectors=self.worker.queues,
                limit=limit,
                skip_locked=self.config.use_skip_locked,
            )

    def _claim_next(self) -> Job | None:
        """Called by a pool thread that just finished a job, for its next one.
        A failure here only sends the thread idle; the claim loop carries on."""
        if self.stopping or not self._saturated:
            return None
        try:
            jobs = self._claim(1)
        except DatabaseError as exc:
            self._on_error(exc, f"worker {self.name} claiming")
            return None
        return jobs[0] if jobs else None

    def step(self) -> None:
        pool = self._pool_or_start()
        idle = pool.idle
        if idle == 0:
            self._saturated = True
            self.sleep(self.worker.polling_interval)
            return
        jobs = self._claim(idle)
        for job in jobs:
            pool.submit(job)
        self._saturated = len(jobs) == idle
        if not self._saturated:
            self.sleep(self.worker.polling_interval)

    def _start_listener(self) -> None:
        if self.config.listen_notify and get_driver(self.alias).supports_notify:
            self.listener = ReadyListener(
                self.alias, self.worker.queues, self.wake, self._stopping, f"{self.name}-listen"
            )
            self.listener.start()

    def shutdown(self) -> None:
        if self._pool is None:
            return
        timeout = self.config.shutdown_timeout
        if not self._pool.wait_idle(timeout):
            self.clean_exit = False
            logger.warning(
                "worker %s still had jobs running after shutdown_timeout (%gs)",
                self.name,
                timeout,
            )
        self._pool.close()
