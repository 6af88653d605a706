"""Settings for dj_queue's test suite.

``DJ_QUEUE_TEST_DB`` picks the database: sqlite (default), postgresql or mariadb.
The suite creates and drops its own test database on each.
"""

import json
import os
import tempfile
from pathlib import Path

DATABASE = os.environ.get("DJ_QUEUE_TEST_DB", "sqlite")
# Subprocesses started by the tests (a real ``manage.py dj_queue``) are pointed
# at the test database the suite created.
TEST_DATABASE_NAME = os.environ.get("DJ_QUEUE_TEST_DB_NAME")

SQLITE_PATH = os.environ.get(
    "DJ_QUEUE_SQLITE_PATH",
    str(Path(tempfile.gettempdir()) / f"dj_queue_test_{os.getpid()}.sqlite3"),
)

if DATABASE == "sqlite":
    default = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": TEST_DATABASE_NAME or SQLITE_PATH,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # A file, not memory: worker subprocesses and threads must see the same data.
        "TEST": {"NAME": SQLITE_PATH},
    }
elif DATABASE == "postgresql":
    default = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": TEST_DATABASE_NAME or "dj_queue",
        "USER": os.environ.get("DJ_QUEUE_PG_USER", "postgres"),
        "HOST": os.environ.get("DJ_QUEUE_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJ_QUEUE_PG_PORT", "5432"),
        "TEST": {"NAME": f"test_dj_queue_{os.getpid()}"},
    }
elif DATABASE == "mariadb":
    default = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": TEST_DATABASE_NAME or "dj_queue",
        "USER": os.environ.get("DJ_QUEUE_MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("DJ_QUEUE_MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("DJ_QUEUE_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJ_QUEUE_MYSQL_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
        "TEST": {"NAME": f"test_dj_queue_{os.getpid()}", "CHARSET": "utf8mb4"},
    }
else:
    raise RuntimeError(f"DJ_QUEUE_TEST_DB={DATABASE!r}: use sqlite, postgresql or mariadb.")

if TEST_DATABASE_NAME:
    default["TEST"] = {"NAME": TEST_DATABASE_NAME}

DATABASES = {"default": default}

SECRET_KEY = "dj-queue-tests"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "dj_queue",
    "tests.taskapp",
]
DATABASE_ROUTERS = ["dj_queue.routers.DjQueueRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

OPTIONS = {
    "workers": [{"queues": ["*"], "threads": 4, "polling_interval": 0.05}],
    "dispatchers": [{"batch_size": 100, "polling_interval": 0.1}],
    "process_heartbeat_interval": 1,
    "process_alive_threshold": 5,
    "shutdown_timeout": 5,
}
# End-to-end tests start runtimes with other options: a JSON mapping merged over OPTIONS.
OPTIONS.update(json.loads(os.environ.get("DJ_QUEUE_TEST_OPTIONS", "{}")))

TASKS = {
    "default": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        "QUEUES": [],
        "OPTIONS": OPTIONS,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "named"}},
    "loggers": {"dj_queue": {"handlers": ["console"], "level": "INFO"}},
}
