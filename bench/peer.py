"""The dj-queue release from PyPI as a third system, seen from bench/run.py.

It cannot share this interpreter (same import name as this repository's dj_queue) nor
the scratch database's tables (same table names). So it gets its own virtualenv
(bench/peer_venv.py), its own scratch database on the same server (``<ours>_peer``; on
SQLite a second file), created here and migrated by the release itself, and every
measurement runs in a child process of that virtualenv (bench/peer_child.py), which
starts the release's runtime itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db import connection

from bench.harness import ROOT
from bench.peer_venv import PEER_NAME, ensure_venv, venv_dir

KEY = "dj_queue_pypi"
NAME = PEER_NAME
CHILD = ROOT / "bench" / "peer_child.py"
RESULT_MARK = "PEER-RESULT "  # as in bench/peer_child.py
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


class Peer:
    """Runs one measurement at a time in a child of the peer virtualenv."""

    key = KEY
    name = NAME

    def __init__(self, python: Path, env: dict[str, str], database: str) -> None:
        self.python = python
        self.env = env
        self.database = database
        self.description: dict[str, Any] = {}

    def call(self, op: str, count: int = 0) -> dict[str, Any]:
        request = json.dumps({"op": op, "count": count})
        command = [str(self.python), "-P", str(CHILD), request]
        child = subprocess.Popen(
            command,
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = child.communicate()
        finally:
            # Interrupted: SIGTERM lets the child stop the runtime it started (its own
            # session, which a SIGKILL of the child would leave running).
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.communicate()
        lines = stdout.splitlines()
        if child.returncode != 0 or not lines or not lines[-1].startswith(RESULT_MARK):
            tail = "\n".join((stdout + stderr).splitlines()[-40:])
            raise RuntimeError(f"{NAME} {op}: child exited with {child.returncode}\n{tail}")
        return json.loads(lines[-1][len(RESULT_MARK) :])

    def enqueue(self, count: int) -> dict[str, Any]:
        return self.call("enqueue", count)

    def bulk(self, count: int) -> dict[str, Any]:
        return self.call("bulk", count)

    def drain(self, count: int) -> dict[str, Any]:
        return self.call("drain", count)

    def latency(self, count: int) -> dict[str, Any]:
        return self.call("latency", count)


@contextlib.contextmanager
def peer_database(scratch_name: str) -> Iterator[Peer]:
    """The peer, on a migrated scratch database of its own beside ``scratch_name``."""
    python = ensure_venv(quiet=True)
    vendor = connection.vendor
    if vendor == "sqlite":
        path = Path(scratch_name)
        name = str(path.with_name(f"{path.stem}-peer{path.suffix}"))
    else:
        name = f"{scratch_name}_peer"
    _create(vendor, name)
    try:
        peer = Peer(python, _env(name), vendor)
        peer.call("migrate")
        peer.description = {**peer.call("describe"), "venv": str(venv_dir())}
        yield peer
    finally:
        _drop(vendor, name)


def _env(name: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # This repository's root must not come before the release's site-packages.
    env.pop("VIRTUAL_ENV", None)
    env["DJANGO_SETTINGS_MODULE"] = "bench.peer_settings"
    env["DJ_QUEUE_BENCH_PEER_DB_NAME"] = name
    return env


def _create(vendor: str, name: str) -> None:
    if vendor == "sqlite":
        _remove_sqlite(name)
        return
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        else:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


def _drop(vendor: str, name: str) -> None:
    if vendor == "sqlite":
        _remove_sqlite(name)
        return
    try:
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    except Exception as exc:
        print(f"warning: could not drop the peer's database {name}: {exc}", file=sys.stderr)


def _remove_sqlite(path: str) -> None:
    for suffix in SQLITE_SUFFIXES:
        Path(path + suffix).unlink(missing_ok=True)
