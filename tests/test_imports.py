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
