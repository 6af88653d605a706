"""Settings for the dj-queue release from PyPI in its own virtualenv (bench/peer_venv.py):
bench/peer_child.py and the peer's ``python -m django dj_queue`` runtime.

Configured as the release's README says (INSTALLED_APPS, its router, its backend in
TASKS), with the runtime topology bench/settings.py gives this repository's dj_queue:
one worker process of 4 threads polling every 0.1 s, one dispatcher. Everything else
is the release's default. The database is the same server with the same connection
options as bench/settings.py (tests/databases.py), but a scratch database of its own
that bench/peer.py creates and drops, named by ``DJ_QUEUE_BENCH_PEER_DB_NAME`` (on
SQLite, a second file); ``DJ_QUEUE_BENCH_DB`` and ``DJ_QUEUE_BENCH_CONN_MAX_AGE`` as for
bench/settings.py.
"""

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _installed_dj_queue() -> str:
    """Where ``dj_queue`` imports from; it must be the release, not this repository."""
    spec = importlib.util.find_spec("dj_queue")
    origin = str(spec.origin) if spec is not None else ""
    if not origin.startswith(sys.prefix + os.sep) or origin.startswith(str(ROOT / "dj_queue")):
        raise RuntimeError(f"peer settings: dj_queue imports from {origin!r}, not the release")
    return origin


def _server_settings(vendor: str, name: str) -> dict:
    # By path: ``tests`` is not a package this virtualenv should go looking for.
    spec = importlib.util.spec_from_file_location("_bench_databases", ROOT / "tests/databases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.server_settings(vendor, name)


DJ_QUEUE_ORIGIN = _installed_dj_queue()
DATABASE = os.environ.get("DJ_QUEUE_BENCH_DB", "sqlite")
CONN_MAX_AGE = int(os.environ.get("DJ_QUEUE_BENCH_CONN_MAX_AGE", "0"))
NAME = os.environ["DJ_QUEUE_BENCH_PEER_DB_NAME"]

DATABASES = {"default": {**_server_settings(DATABASE, NAME), "CONN_MAX_AGE": CONN_MAX_AGE}}

SECRET_KEY = "dj-queue-bench-peer"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["dj_queue"]
DATABASE_ROUTERS = ["dj_queue.routers.DjQueueRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        "QUEUES": [],
        "OPTIONS": {
            "workers": [{"queues": ["*"], "threads": 4, "processes": 1, "polling_interval": 0.1}],
            "dispatchers": [{"batch_size": 500, "polling_interval": 1}],
        },
    },
}

# WARNING, not INFO as bench/settings.py has for this repository's dj_queue: the release
# logs an event for every job at INFO (job.enqueued, job.claimed, ...), and at INFO that
# logging would be part of what is measured. Unconfigured, as its README leaves it, the
# "dj_queue" logger inherits WARNING as well; this keeps warnings and errors in the logs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(asctime)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "named"}},
    "loggers": {"dj_queue": {"handlers": ["console"], "level": "WARNING"}},
}
