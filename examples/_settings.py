"""Django settings for every example, and for the runtime each one starts.

``_support.configure()`` works out the choices (databases, dj_queue options,
whether the admin is on) and puts them in ``DJ_QUEUE_EXAMPLE_SETTINGS`` as JSON
before Django starts; a ``django-admin dj_queue`` subprocess inherits the
environment and so reads exactly the same settings.
"""

import json
import os

_choices = json.loads(os.environ["DJ_QUEUE_EXAMPLE_SETTINGS"])

SECRET_KEY = "dj-queue-examples-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = _choices["databases"]
DATABASE_ROUTERS = ["dj_queue.routers.DjQueueRouter"]

INSTALLED_APPS = [
    *(
        [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ]
        if _choices["admin"]
        else []
    ),
    "dj_queue",
    # Imports the example's own module once Django is ready, so its tasks are
    # registered in this process and in every runtime process it starts.
    "_support.ExampleConfig",
]

if _choices["admin"]:
    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
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
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

ROOT_URLCONF = _choices["urls"] or "_support"

TASKS = {
    "default": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        "QUEUES": _choices["queues"],
        "OPTIONS": _choices["options"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # The runtime's log file tells its story at INFO; the example's own
        # process stays quiet so its printed lines read cleanly.
        "dj_queue": {
            "handlers": ["console"],
            "level": os.environ.get("DJ_QUEUE_EXAMPLE_LOG_LEVEL", "WARNING"),
            "propagate": False,
        },
    },
}
