"""Supervisors start the configured actors, replace the ones that die, keep the
process registry clean and stop everything gracefully.

``ForkSupervisor`` runs each actor in a child process; ``AsyncSupervisor`` runs
them as threads of its own process. Both share the plan (which actors), the
replacement policy (back off when an actor keeps dying) and the recovery of a
dead actor's jobs (failed with ``ProcessExitError``).

The pieces live in ``supervisor_base`` (shared), ``supervisor_fork``,
``supervisor_async`` and ``selfpipe`` (the wake-up pipe and signal handlers);
this module is where they are imported from.
"""

from __future__ import annotations

from ..config import QueueConfig
from .supervisor_async import AsyncSupervisor
from .supervisor_base import (
    MAX_RESTART_DELAY,
    MAX_TICK,
    SHUTDOWN_GRACE,
    STABLE_AFTER,
    Ending,
    Slot,
    Supervisor,
    Topology,
)
from .supervisor_fork import ForkSupervisor

__all__ = [
    "MAX_RESTART_DELAY",
    "MAX_TICK",
    "SHUTDOWN_GRACE",
    "STABLE_AFTER",
    "SUPERVISORS",
    "AsyncSupervisor",
    "Ending",
    "ForkSupervisor",
    "Slot",
    "Supervisor",
    "Topology",
    "build_supervisor",
]

SUPERVISORS: dict[str, type[Supervisor]] = {"fork": ForkSupervisor, "async": AsyncSupervisor}


def build_supervisor(
    *, backend_alias: str, config: QueueConfig, topology: Topology, standalone: bool = True
) -> Supervisor:
    return SUPERVISORS[config.mode](
        backend_alias=backend_alias, config=config, topology=topology, standalone=standalone
    )
