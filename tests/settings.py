"""Settings for dj_queue's test suite.

``DJ_QUEUE_TEST_DB`` picks the database: sqlite (default), postgresql or mariadb.
The suite creates and drops its own test database on each.
"""

import json
import os
import tempfile
from pathlib import Path

import django

from tests.databases import VENDORS, server_settings

DATABASE = os.environ.get("DJ_QUEUE_TEST_DB", "sqlite")
if DATABASE not in VENDORS:
    raise RuntimeError(f"DJ_QUEUE_TEST_DB={DATABASE!r}: use sqlite, postgresql or mariadb.")

TMP = Path(tempfile.gettempdir())


def database(alias: str) -> dict:
    """One alias on the chosen server. Subprocesses started by the tests (a real
    ``manage.py dj_queue``) get the created test database's name in
    DJ_QUEUE_TEST_DB_NAME (default) or DJ_QUEUE_TEST_QUEUE_DB_NAME (queue)."""
    given = os.environ.get(
        "DJ_QUEUE_TEST_DB_NAME" if alias == "default" else "DJ_QUEUE_TEST_QUEUE_DB_NAME"
    )
    suffix = "" if alias == "default" else f"_{alias}"
    if DATABASE == "sqlite":
        # A file, not memory: worker subprocesses and threads must see the same data.
        name = test_name = given or str(TMP / f"dj_queue_test{suffix}_{os.getpid()}.sqlite3")
    else:
        name = given or f"dj_queue{suffix}"
        test_name = given or f"test_dj_queue{suffix}_{os.getpid()}"
    settings = server_settings(DATABASE, name)
    settings["TEST"] = {**settings.get("TEST", {}), "NAME": test_name}
    return settings


# "queue" holds the tables of the "separate" task backend: a dedicated queue database.
DATABASES = {"default": database("default"), "queue": database("queue")}

SECRET_KEY = "dj-queue-tests"
# The embedded-server tests request real servers on the loopback.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "dj_queue",
    "tests.taskapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
# The browser tests' live server serves the admin's own CSS and JavaScript
# (without django.contrib.staticfiles it serves STATIC_ROOT).
STATIC_URL = "/static/"
STATIC_ROOT = str(Path(django.__file__).resolve().parent / "contrib" / "admin" / "static")
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
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
    "separate": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        "QUEUES": [],
        # Recurring tasks name tasks of the default backend: they stay there.
        "OPTIONS": {
            **{name: value for name, value in OPTIONS.items() if name != "recurring"},
            "database_alias": "queue",
        },
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "named"}},
    "loggers": {"dj_queue": {"handlers": ["console"], "level": "INFO"}},
}

# The admin tests log users in; a slow password hash would only slow the suite.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
