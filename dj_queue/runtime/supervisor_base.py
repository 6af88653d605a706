"""What both kinds of supervisor share: the plan (which actors), the main loop,
the replacement policy (back off when an actor keeps dying), the recovery of a
dead actor's jobs (failed with ``ProcessExitError``) and the graceful stop.

A mode (``ForkSupervisor``, ``AsyncSupervisor``) says how an actor is started,
noticed ending and stopped.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.db import DatabaseError, connections

from ..config import QueueConfig
from ..db import get_driver
from ..operations.processes import (
    deregister_process_named,
    fail_orphaned_claims,
    prune_dead_processes,
)
from .actor import Actor
from .dispatcher import Dispatcher
from .scheduler import Scheduler, scheduler_has_work
from .selfpipe import SelfPipe, install_stop_handlers
from .worker import Worker

logger = logging.getLogger("dj_queue")

# A replacement that dies sooner than this after starting counts towards backoff.
STABLE_AFTER = 30.0
MAX_RESTART_DELAY = 60.0
# The longest the supervisor sleeps: how late it may notice a dead thread.
MAX_TICK = 1.0
# Time for workers to deregister after their own shutdown_timeout, before a kill.
SHUTDOWN_GRACE = 3.0
# A forked child's exit status when it stopped to be replaced (a worker after a
# timeout): started again at once, not counted as a crash.
RETIRED_EXIT_CODE = 75


@dataclass(frozen=True, slots=True)
class Topology:
    """Which kinds of actor a supervisor runs."""

    workers: bool = True
    dispatchers: bool = True
    scheduler: bool = True

    @classmethod
    def from_flags(
        cls, *, only_work: bool = False, only_dispatch: bool = False, skip_recurring: bool = False
    ) -> Topology:
        if only_work and only_dispatch:
            raise ValueError("--only-work and --only-dispatch cannot be combined.")
        return cls(
            workers=not only_dispatch,
            dispatchers=not only_work,
            scheduler=not (only_work or only_dispatch or skip_recurring),
        )


@dataclass(slots=True)
class Slot:
    """A place for one actor; when its actor ends unasked, a new one takes it."""

    label: str
    make: Callable[[int], Actor]  # supervisor process id -> a new actor
    actor: Actor | None = None
    handle: Any = None  # a thread, or a child's pid
    started_at: float = 0.0
    failures: int = 0
    start_at: float = 0.0  # monotonic time from which it may (re)start

    @property
    def running(self) -> bool:
        return self.actor is not None


@dataclass(slots=True)
class Ending:
    slot: Slot
    description: str
    clean: bool
    runtime: float = field(default=0.0)
    retired: bool = False


class Supervisor(Actor):
    kind = "supervisor"
    mode: ClassVar[str]

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
        self.slots: list[Slot] = []
        self._booted = False
        self._next_maintenance = 0.0
        self._pipe = SelfPipe()

    # -- plan ---------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "workers": sum(w.processes for w in self.config.workers)
            if self.topology.workers
            else 0,
            "dispatchers": len(self.config.dispatchers) if self.topology.dispatchers else 0,
            "scheduler": self.runs_scheduler,
            "embedded": not self.standalone,
        }

    @property
    def runs_scheduler(self) -> bool:
        return self.topology.scheduler and scheduler_has_work(self.config)

    def plan(self) -> list[Slot]:
        alias, config = self.backend_alias, self.config
        slots: list[Slot] = []
        if self.topology.workers:
            for index, worker in enumerate(config.workers):
                for number in range(worker.processes):
                    slots.append(
                        Slot(
                            f"worker[{index}]#{number}",
                            lambda sid, w=worker: Worker(  # type: ignore[misc]
                                backend_alias=alias,
                                config=config,
                                worker=w,
                                supervisor_id=sid,
                                retire_on_timeout=self.mode == "fork",
                            ),
                        )
                    )
        if self.topology.dispatchers:
            for index, dispatcher in enumerate(config.dispatchers):
                slots.append(
                    Slot(
                        f"dispatcher[{index}]",
                        lambda sid, d=dispatcher: Dispatcher(  # type: ignore[misc]
                            backend_alias=alias, config=config, dispatcher=d, supervisor_id=sid
                        ),
                    )
                )
        if self.runs_scheduler:
            slots.append(
                Slot(
                    "scheduler",
                    lambda sid: Scheduler(backend_alias=alias, config=config, supervisor_id=sid),
                )
            )
        return slots

    # -- running ------------------------------------------------------------
    def start(self) -> int:
        """Run until stopped; returns the exit status (0 for a clean stop)."""
        if self.standalone:
            self._install_signal_handlers()
        self.run()
        return 0 if self.clean_exit else 1

    # The handlers only note a signal on the pipe (see ``selfpipe``); ``sleep``
    # acts on it outside the handler.
    def _install_signal_handlers(self) -> None:
        install_stop_handlers(self._pipe, on_quit=self.quit_children)

    def wake(self) -> None:
        super().wake()
        self._pipe.poke()

    def stop(self) -> None:
        super().stop()
        self._pipe.poke()

    def sleep(self, seconds: float) -> None:
        self._pipe.wait(seconds)
        while self._pipe.signals:
            signum = self._pipe.signals.pop(0)
            logger.info(
                "supervisor stopping name=%s signal=%s", self.name, signal.Signals(signum).name
            )
            self.stop()

    def step(self) -> None:
        if not self._booted:
            self._boot()
        for ending in self.ended_children():
            self._handle_ending(ending)
        if self.stopping:
            return
        self._start_due_slots()
        now = time.monotonic()
        if now >= self._next_maintenance:
            self._maintain()
            self._next_maintenance = now + self._maintenance_interval()
        if not self.heartbeat_in_thread and self.heartbeat_due():
            self.beat()
        self.sleep(self._tick())

    def _boot(self) -> None:
        self._use_wal()
        self._maintain()
        failed = fail_orphaned_claims(self.alias)
        if failed:
            logger.warning("failed %d job(s) claimed by processes that no longer exist", failed)
        self.slots = self.plan()
        self._next_maintenance = time.monotonic() + self._maintenance_interval()
        self._booted = True

    def _use_wal(self) -> None:
        if not self.config.sqlite_wal:
            return
        try:
            left = get_driver(self.alias).use_wal()
        except DatabaseError as exc:
            logger.warning("could not switch the SQLite database to WAL mode: %s", exc)
            return
        if left is not None:
            logger.info(
                "SQLite database %s: journal mode %s -> wal, for faster commits; the file "
                "now has -wal and -shm companions (OPTIONS['sqlite_wal'] = False keeps %s)",
                connections[self.alias].settings_dict["NAME"],
                left,
                left,
            )

    def _maintenance_interval(self) -> float:
        return min(self.config.process_heartbeat_interval, self.config.process_alive_threshold / 2)

    def _maintain(self) -> None:
        pruned = prune_dead_processes(
            self.alias,
            alive_threshold=self.config.process_alive_threshold,
            exclude_id=self.process_id,
        )
        if pruned:
            logger.warning("pruned %d process(es) that stopped heartbeating", pruned)

    def _tick(self) -> float:
        now = time.monotonic()
        waits = [MAX_TICK, max(0.0, self._next_maintenance - now)]
        waits.extend(max(0.0, s.start_at - now) for s in self.slots if not s.running)
        return min(waits)

    def _start_due_slots(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if not slot.running and now >= slot.start_at and not self.stopping:
                slot.actor = slot.make(self._process_id())
                slot.started_at = now
                slot.handle = self.launch(slot.actor)

    def _handle_ending(self, ending: Ending) -> None:
        slot = ending.slot
        actor = slot.actor
        assert actor is not None
        slot.actor = slot.handle = None
        self._recover(actor, ending.description)
        if self.stopping:
            if not ending.clean:
                self.clean_exit = False
            return
        if ending.retired:
            slot.failures = 0
            slot.start_at = time.monotonic()
            logger.info(
                "%s retired name=%s slot=%s; replacing it", actor.kind, actor.name, slot.label
            )
            return
        ran_for = time.monotonic() - slot.started_at
        slot.failures = slot.failures + 1 if ran_for < STABLE_AFTER else 1
        delay = 0.0 if slot.failures == 1 else min(MAX_RESTART_DELAY, 2.0 ** (slot.failures - 2))
        slot.start_at = time.monotonic() + delay
        logger.error(
            "%s ended unexpectedly name=%s slot=%s how=%r; replacing it in %.0fs",
            actor.kind,
            actor.name,
            slot.label,
            ending.description,
            delay,
        )

    def _recover(self, actor: Actor, description: str) -> None:
        """Fail the jobs an ended actor still held, if it could not do so itself."""
        try:
            failed = deregister_process_named(self.alias, actor.name, reason=description)
        except Exception as exc:
            # Its heartbeat goes stale and pruning fails the jobs instead.
            self._on_error(exc, f"recovering {actor.kind} {actor.name}")
            return
        if failed:
            logger.warning(
                "failed %d job(s) of %s name=%s, which %s",
                failed,
                actor.kind,
                actor.name,
                description,
            )

    def shutdown(self) -> None:
        running = [slot for slot in self.slots if slot.running]
        if not running:
            return
        self.stop_children()
        deadline = time.monotonic() + self.config.shutdown_timeout + SHUTDOWN_GRACE
        while any(slot.running for slot in self.slots) and time.monotonic() < deadline:
            for ending in self.ended_children():
                self._handle_ending(ending)
            self.sleep(0.05)
        for ending in self.force_children():
            self._handle_ending(ending)

    # -- per mode -------------------------------------------------------------
    def launch(self, actor: Actor) -> Any:
        """Start ``actor``; returns what ``ended_children`` tracks it by."""
        raise NotImplementedError

    def ended_children(self) -> list[Ending]:
        raise NotImplementedError

    def stop_children(self) -> None:
        raise NotImplementedError

    def force_children(self) -> list[Ending]:
        """End the children still running after the shutdown deadline."""
        raise NotImplementedError

    def quit_children(self) -> None:
        """On SIGQUIT: end every child at once, leaving their claims to pruning."""
