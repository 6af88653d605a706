"""Gunicorn server hooks that run the queue inside each worker process.

In ``gunicorn.conf.py``::

    from dj_queue.contrib.gunicorn import post_fork, worker_exit

``post_fork`` runs in each new worker, before a worker that is not preloaded
has imported the application (and so set Django up): the embedded supervisor is
started by a thread that waits for Django's app registry to be ready, which the
application's ``get_wsgi_application()`` makes it. With ``preload_app = True``
Django is ready already and the supervisor starts at once. ``worker_exit``
stops it gracefully (running jobs get ``shutdown_timeout``). A worker gunicorn
kills (its timeout) leaves its claims to be recovered like any dead process's.

The backend served is ``DJ_QUEUE_BACKEND`` (default ``default``). Importing this
module touches neither settings nor models.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

logger = logging.getLogger("dj_queue")

# How long a worker's starter thread waits for Django to be set up.
READY_TIMEOUT = 120.0


def post_fork(server: Any, worker: Any) -> None:
    backend = os.environ.get("DJ_QUEUE_BACKEND", "default")
    threading.Thread(
        target=_start_when_ready, args=(backend,), name="dj-queue-embedded-start", daemon=True
    ).start()


def worker_exit(server: Any, worker: Any) -> None:
    from ..runtime.embedded import stop_embedded

    stop_embedded()


def _start_when_ready(backend: str) -> None:
    from django.apps import apps

    deadline = time.monotonic() + READY_TIMEOUT
    while not apps.ready:
        if time.monotonic() > deadline:
            logger.error(
                "Django was not set up within %.0fs of the worker starting; the "
                "embedded supervisor is not running in pid %d",
                READY_TIMEOUT,
                os.getpid(),
            )
            return
        time.sleep(0.05)
    from ..runtime.embedded import start_embedded

    try:
        start_embedded(backend)
    except Exception:
        logger.exception("the embedded supervisor could not start in pid %d", os.getpid())
