"""The runtime puts a SQLite queue database in WAL mode, once, unless told not to.

Each test migrates a database file of its own in the default rollback-journal
mode (the suite's own files are opened in WAL by the test settings)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import ROOT, Runtime, options_env

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's journal mode")


def journal_mode(path) -> str:
    with sqlite3.connect(path) as raw:
        return str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower()


@pytest.fixture
def fresh_env(tmp_path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DJ_QUEUE_TEST_DB_NAME": str(tmp_path / "default.sqlite3"),
        "DJ_QUEUE_TEST_QUEUE_DB_NAME": str(tmp_path / "queue.sqlite3"),
        # The settings then leave the journal mode alone: dj_queue decides.
        "DJ_QUEUE_TEST_SQLITE_NO_WAL": "1",
    }
    for alias in ("default", "queue"):
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--database", alias, "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
        )
    assert journal_mode(env["DJ_QUEUE_TEST_DB_NAME"]) == "delete"
    return env


def run_once(env: dict[str, str]) -> str:
    runtime = Runtime([], env)
    try:
        runtime.wait_for_log("dj_queue: worker started")
        assert runtime.stop() == 0
        return runtime.log()
    finally:
        runtime.close()


def test_the_runtime_switches_the_file_to_wal_and_says_so_once(fresh_env):
    first = run_once(fresh_env)
    assert journal_mode(fresh_env["DJ_QUEUE_TEST_DB_NAME"]) == "wal"
    assert "journal mode delete -> wal" in first
    assert "-> wal" not in run_once(fresh_env)  # already WAL: nothing to say


def test_sqlite_wal_false_keeps_the_journal_mode(fresh_env):
    log = run_once({**fresh_env, **options_env(sqlite_wal=False)})
    assert journal_mode(fresh_env["DJ_QUEUE_TEST_DB_NAME"]) == "delete"
    assert "-> wal" not in log
