"""The supervisor: starts the configured actors, keeps the process registry
clean, and stops everything gracefully."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ..config import QueueConfig
from ..operations.processes import prune_dead_processes
from .actor import Actor
from .dispatcher import Dispatcher
from .worker import Worker

logger = logging.getLogger("dj_queue")


@dataclass(frozen=True, slots=True)
class Topology:
    """Which kinds of actor a supervisor runs."""

    workers: bool = True
    dispatchers: bool = True

    @classmethod
    def from_flags(cls, *, only_work: bool = False, only_dispatch: bool = False) -> Topology:
        if only_work and only_dispatch:
            raise ValueError("--only-work and --only-dispatch cannot be combined.")
        return cls(workers=not only_dispatch, dispatchers=not only_work)


class AsyncSupervisor(Actor):
    """Runs every actor as a thread of this process.

    ``standalone=False`` leaves signal handling to a host (an ASGI or Gunicorn
    server embedding the runtime), which calls ``stop()`` itself.
    """

    kind = "supervisor"

    def __init__(
        self,
        *,
        backend_alias: str,
        config: QueueConfig,
        topology: Topology | None = None,
        standalone: bool = True,
    ) -> None:
        super().__init__(backend_alias=backend_alias, config=config)
        self.topology = topology or Topology()
        self.standalone = standalone
        self.actors: list[Actor] = []
        self._threads: list[threading.Thread] = []

    def metadata(self) -> dict[str, Any]:
        return {
            "mode": "async",
            "workers": self.topology.workers,
            "dispatchers": self.topology.dispatchers,
        }

    def build_actors(self) -> list[Actor]:
        actors: list[Actor] = []
        supervisor_id = self._process_id()
        if self.topology.workers:
            for worker in self.config.workers:
                actors.extend(
                    Worker(
                        backend_alias=self.backend_alias,
                        config=self.config,
                        worker=worker,
                        supervisor_id=supervisor_id,
                    )
                    for _ in range(worker.processes)
                )
        if self.topology.dispatchers:
            actors.extend(
                Dispatcher(
                    backend_alias=self.backend_alias,
                    config=self.config,
                    dispatcher=dispatcher,
                    supervisor_id=supervisor_id,
                )
                for dispatcher in self.config.dispatchers
            )
        return actors

    def start(self) -> int:
        """Run until stopped; returns the process exit status (0 for a clean stop)."""
        if self.standalone:
            self._install_signal_handlers()
        self.run()
        return 0 if self.clean_exit and all(actor.clean_exit for actor in self.actors) else 1

    def _install_signal_handlers(self) -> None:
        def graceful(signum: int, frame: FrameType | None) -> None:
            logger.info("received %s, stopping", signal.Signals(signum).name)
            self.stop()

        def immediate(signum: int, frame: FrameType | None) -> None:
            logger.warning("received SIGQUIT, exiting at once")
            os._exit(1)

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, graceful)
        signal.signal(signal.SIGQUIT, immediate)

    def _maintenance_interval(self) -> float:
        return min(self.config.process_heartbeat_interval, self.config.process_alive_threshold / 2)

    def step(self) -> None:
        if not self.actors:
            self._prune()
            self.actors = self.build_actors()
            for actor in self.actors:
                thread = threading.Thread(target=actor.run, name=actor.name, daemon=True)
                self._threads.append(thread)
                thread.start()
        self.sleep(self._maintenance_interval())
        if not self.stopping:
            self._prune()

    def _prune(self) -> None:
        pruned = prune_dead_processes(
            self.alias,
            alive_threshold=self.config.process_alive_threshold,
            exclude_id=self.process_id,
        )
        if pruned:
            logger.warning("pruned %d dead process(es)", pruned)

    def shutdown(self) -> None:
        for actor in self.actors:
            actor.stop()
        # Each worker waits up to shutdown_timeout for its jobs, then deregisters.
        deadline = time.monotonic() + self.config.shutdown_timeout + 10.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.clean_exit = False
                logger.error("%s did not stop in time", thread.name)
