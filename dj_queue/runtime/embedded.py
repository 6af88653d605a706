"""Running the queue inside a host server process (ASGI, Gunicorn).

``start_embedded`` builds an ``AsyncSupervisor(standalone=False)`` for one
backend — the async mode whatever ``mode`` says, since a server's process must
not fork behind its back — starts it and remembers it, so that the host's hooks
can stop it later by backend alias. One process gets at most one supervisor per
backend: a second start returns the running one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

from ..config_loading import load_config, skip_recurring
from .supervisor import Topology
from .supervisor_async import AsyncSupervisor

logger = logging.getLogger("dj_queue")

_running: dict[tuple[int, str], AsyncSupervisor] = {}
_lock = threading.Lock()


def start_embedded(
    backend: str = "default",
    *,
    only_work: bool = False,
    only_dispatch: bool = False,
    skip_recurring_tasks: bool = False,
) -> AsyncSupervisor:
    """Start (once per process and backend) an embedded supervisor; returns
    when its actors are registered. Django must be set up. Raises the
    configuration's errors, and EmbeddedStartError if the actors do not come up."""
    from django.db import connections
    from django.tasks import task_backends

    from ..backend import DjQueueBackend
    from ..exceptions import ConfigurationError
    from ..recurring import static_definitions

    key = (os.getpid(), backend)
    with _lock:
        running = _running.get(key)
        if running is not None:
            return running
        queue_backend = task_backends[backend]
        if not isinstance(queue_backend, DjQueueBackend):
            raise ConfigurationError(
                f"TASKS[{backend!r}] is not a dj_queue backend; embedded mode needs "
                "'BACKEND': 'dj_queue.backend.DjQueueBackend'."
            )
        config = dataclasses.replace(load_config(backend, queue_backend.options), mode="async")
        topology = Topology.from_flags(
            only_work=only_work,
            only_dispatch=only_dispatch,
            skip_recurring=skip_recurring_tasks or skip_recurring(),
        )
        if config.database_alias not in connections.settings:
            raise ConfigurationError(
                f"database_alias {config.database_alias!r} of backend {backend!r} is not in "
                "DATABASES."
            )
        if topology.scheduler:
            static_definitions(queue_backend, config.recurring)
        supervisor = AsyncSupervisor(
            backend_alias=backend, config=config, topology=topology, standalone=False
        )
        supervisor.start()
        _running[key] = supervisor
        logger.info("embedded supervisor started backend=%s pid=%d", backend, key[0])
        return supervisor


def stop_embedded(backend: str | None = None) -> None:
    """Stop this process's embedded supervisors (of ``backend``, or all), each
    gracefully; does nothing for those already stopped."""
    pid = os.getpid()
    with _lock:
        keys = [key for key in _running if key[0] == pid and backend in (None, key[1])]
        supervisors = [_running.pop(key) for key in keys]
    for supervisor in supervisors:
        supervisor.stop()
        logger.info(
            "embedded supervisor stopped backend=%s pid=%d",
            supervisor.backend_alias,
            pid,
        )
