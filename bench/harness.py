"""What the measurements stand on: a scratch database, emptied tables between
measurements, and runtime subprocesses that are always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core.management.color import no_style
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(tempfile.gettempdir())


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """Create a migrated scratch database for the ``default`` alias and drop it on exit."""
    original = str(connection.settings_dict["NAME"])
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield name
    finally:
        _destroy(original, name)


def _destroy(original: str, name: str) -> None:
    # A runtime backend that has only just exited may still hold the database
    # for a moment on PostgreSQL (DROP DATABASE refuses then): retry briefly.
    for attempt in range(5):
        try:
            connection.creation.destroy_test_db(original, verbosity=0)
            break
        except Exception as exc:
            if attempt == 4:
                print(f"warning: could not drop scratch database {name}: {exc}", file=sys.stderr)
            connection.settings_dict["NAME"] = name
            time.sleep(1)
    if connection.vendor == "sqlite":
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


def empty_tables() -> None:
    """Delete every row of both systems, so one measurement starts from nothing."""
    tables = connection.introspection.django_table_names(only_existing=True)
    # reset_sequences makes MariaDB TRUNCATE instead of DELETE, leaving no purge work behind.
    sql = connection.ops.sql_flush(no_style(), tables, reset_sequences=True, allow_cascade=True)
    connection.ops.execute_sql_flush(sql)


def poll(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g}s")
        time.sleep(interval)


class Runtime:
    """Some ``manage.py`` worker subprocesses pointed at the scratch database.

    Each runs in its own session, so stopping it reaches any child it forked.
    """

    def __init__(self, label: str, commands: list[list[str]], env: dict[str, str]) -> None:
        self.label = label
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.started_wall = time.time()
        self.started = time.monotonic()
        for index, command in enumerate(commands):
            log = LOG_DIR / f"dj_queue_bench_{os.getpid()}_{label}_{index}.log"
            self.logs.append(log)
            with log.open("wb") as output:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "django", *command],
                        cwd=ROOT,
                        env=env,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def check_alive(self, allow_clean_exit: bool = False) -> None:
        """Raise if a subprocess died (or, unless allowed, exited at all)."""
        for process, log in zip(self.processes, self.logs, strict=True):
            code = process.poll()
            if code is None or (allow_clean_exit and code == 0):
                continue
            raise RuntimeError(f"{self.label}: {log.name} exited with status {code}")

    def all_exited(self) -> bool:
        return all(process.poll() is not None for process in self.processes)

    def stop(self, timeout: float = 15.0) -> None:
        # SIGTERM to the command itself: dj_queue's supervisor stops its own children.
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
            # SIGKILL the whole session: a forked child may outlive its parent.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def close(self) -> None:
        self.stop()
        for log in self.logs:
            log.unlink(missing_ok=True)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None and exc_info[0] is not KeyboardInterrupt:
            # Keep what the runtime said: it usually explains the failure.
            self.stop()
            for log in self.logs:
                print(f"--- {log} ---\n{self._tail(log)}", file=sys.stderr)
        self.close()

    @staticmethod
    def _tail(log: Path, lines: int = 30) -> str:
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"
