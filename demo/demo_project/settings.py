"""Settings for the dj_queue demo: one SQLite file shared by the runner and the runtime.

``run_demo.py`` creates a fresh temporary directory per run and passes the database
path in ``DJ_QUEUE_DEMO_DB``; both the runner and the ``manage.py dj_queue``
subprocess it starts read the same variable, so they meet in the same file.
"""

import os
import tempfile
from pathlib import Path

DATABASE_PATH = os.environ.get(
    "DJ_QUEUE_DEMO_DB", str(Path(tempfile.gettempdir()) / "dj_queue_demo.sqlite3")
)

# The runner asks the runtime subprocess for INFO so its log file tells the story;
# the runner itself stays at WARNING to keep its progress lines readable.
LOG_LEVEL = os.environ.get("DJ_QUEUE_DEMO_LOG_LEVEL", "WARNING")

SECRET_KEY = "dj-queue-demo-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "dj_queue",
    "shop",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATABASE_PATH,
        "OPTIONS": {
            # Take the write lock when a transaction starts, so concurrent writers
            # queue on the busy timeout instead of failing on a lock upgrade.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # WAL lets the runner read progress while the runtime writes.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
DATABASE_ROUTERS = ["dj_queue.routers.DjQueueRouter"]

TASKS = {
    "default": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        # Empty: any queue name is accepted; the workers below decide what runs.
        "QUEUES": [],
        "OPTIONS": {
            "workers": [
                # Listed queues are served in order: email before default.
                {"queues": ["email", "default"], "threads": 3, "polling_interval": 0.1},
                # A prefix: reports_monthly, reports_quarterly, ...
                {"queues": ["reports*"], "threads": 2, "polling_interval": 0.1},
            ],
            "dispatchers": [{"polling_interval": 0.2}],
            # The scheduler fires this every two seconds (the sixth cron field is seconds).
            "recurring": {
                "metrics_snapshot": {
                    "task_path": "shop.tasks.snapshot_metrics",
                    "schedule": "* * * * * */2",
                    "description": "a snapshot of the shop's figures",
                },
            },
            "scheduler": {"polling_interval": 1},
            # Short intervals so the demo starts and stops in seconds.
            "process_heartbeat_interval": 1,
            "process_alive_threshold": 5,
            "shutdown_timeout": 5,
        },
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "dj_queue": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.tasks": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
