"""Settings for ``bench/run.py``: dj_queue and django-tasks-db on one database.

``DJ_QUEUE_BENCH_DB`` picks the server (sqlite, postgresql or mariadb), with the
same connection settings as the test suite; ``DJ_QUEUE_BENCH_CONN_MAX_AGE`` sets
``CONN_MAX_AGE`` (0, Django's default, unless given; bench/run.py passes its
``--conn-max-age``, 600 by default). Runtime subprocesses find the scratch database
the benchmark created in ``DJ_QUEUE_BENCH_DB_NAME``. Both task systems share the one
alias, so they see the same server and options. The dj-queue release from PyPI runs
in its own virtualenv with bench/peer_settings.py: the same server and options, a
scratch database of its own.
"""

import os
import tempfile
from pathlib import Path

from tests.databases import VENDORS, server_settings

DATABASE = os.environ.get("DJ_QUEUE_BENCH_DB", "sqlite")
if DATABASE not in VENDORS:
    raise RuntimeError(f"DJ_QUEUE_BENCH_DB={DATABASE!r}: use sqlite, postgresql or mariadb.")

CONN_MAX_AGE = int(os.environ.get("DJ_QUEUE_BENCH_CONN_MAX_AGE", "0"))
SCRATCH_NAME = os.environ.get("DJ_QUEUE_BENCH_DB_NAME")


def database() -> dict:
    if DATABASE == "sqlite":
        # A file, not memory: the runtime subprocesses must see the same data.
        name = test_name = SCRATCH_NAME or str(
            Path(tempfile.gettempdir()) / f"dj_queue_bench_{os.getpid()}.sqlite3"
        )
    else:
        name = SCRATCH_NAME or "dj_queue_bench"
        test_name = SCRATCH_NAME or f"dj_queue_bench_{os.getpid()}"
    settings = server_settings(DATABASE, name)
    settings["CONN_MAX_AGE"] = CONN_MAX_AGE
    settings["TEST"] = {**settings.get("TEST", {}), "NAME": test_name}
    return settings


DATABASES = {"default": database()}

SECRET_KEY = "dj-queue-bench"
DEBUG = False  # no query log growing in the measuring process, no db_worker autoreload
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["dj_queue", "django_tasks_db", "bench.benchapp"]
DATABASE_ROUTERS = ["dj_queue.routers.DjQueueRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DJ_QUEUE_OPTIONS = {
    "workers": [{"queues": ["*"], "threads": 4, "processes": 1, "polling_interval": 0.1}],
    "dispatchers": [{"batch_size": 500, "polling_interval": 1}],
}

TASKS = {
    "default": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        "QUEUES": [],
        "OPTIONS": DJ_QUEUE_OPTIONS,
    },
    "reference": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}

# Runtime logs go to each subprocess's log file; only lifecycle and trouble.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(asctime)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "named"}},
    "loggers": {"dj_queue": {"handlers": ["console"], "level": "INFO"}},
}
