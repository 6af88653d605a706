"""dj_queue works on SQLite and MySQL without psycopg installed."""

import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import sys
sys.modules["psycopg"] = None  # as if it were not installed
import django
django.setup()
import dj_queue.admin, dj_queue.api, dj_queue.backend
import dj_queue.management.commands.dj_queue
import dj_queue.runtime.supervisor
from dj_queue.db import get_driver
print(type(get_driver("default")).__name__)
"""


def test_everything_but_the_postgresql_driver_imports_without_psycopg():
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DJ_QUEUE_TEST_DB": "sqlite",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "SQLiteDriver"


HOST_SCRIPT = """
import sys
import dj_queue.contrib.asgi, dj_queue.contrib.gunicorn
from django.apps import apps
from django.conf import settings
assert not apps.ready and not settings.configured, "importing set Django up"
loaded = sorted(name for name in sys.modules if name.startswith("dj_queue.models"))
print(loaded)
"""


def test_the_server_integrations_import_before_django_is_set_up():
    # The README's asgi.py imports dj_queue.contrib.asgi before
    # get_asgi_application(): nothing there may need settings or models.
    environ = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run(
        [sys.executable, "-c", HOST_SCRIPT],
        cwd=ROOT,
        env={**environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
