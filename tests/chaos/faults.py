"""Faults injected on a schedule, and the record of when each one struck.

Database faults act only on servers on this machine (the restart commands are
this machine kind's own service commands) and only on the test database's
sessions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, connections

LOCAL_HOSTS = {"", "127.0.0.1", "localhost", "::1"}
MARIADBD = "/usr/sbin/mariadbd"


@dataclass(frozen=True)
class Fault:
    """One fault: what, when (``time.time()``), which pids it killed or froze;
    for an outage when the server answered again, for a kill or a freeze when the
    queue had settled the claims of the processes it stopped."""

    kind: str
    at: float
    pids: tuple[int, ...] = ()
    back_at: float | None = None
    settled_at: float | None = None
    count: int = 0


@dataclass
class FaultLog:
    faults: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def death_times(self) -> dict[int, float]:
        """When each killed pid died (its first kill)."""
        deaths: dict[int, float] = {}
        for fault in self.faults:
            if fault.kind.startswith("kill"):
                for pid in fault.pids:
                    deaths.setdefault(pid, fault.at)
        return deaths


class Schedule:
    """Runs ``strike()`` after ``first`` seconds, then every ``every`` seconds, on a
    thread until stopped; what it returns (a Fault or None) goes to the log, what it
    raises to the log's errors."""

    def __init__(
        self,
        log: FaultLog,
        every: float,
        strike: Callable[[], Fault | None],
        first: float | None = None,
    ):
        self.log = log
        self.every = every
        self.first = every / 2 if first is None else first
        self.strike = strike
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)

    def __enter__(self) -> Schedule:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        try:
            wait = self.first
            while not self._stop.wait(wait):
                wait = self.every
                try:
                    fault = self.strike()
                except Exception as exc:
                    self.log.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if fault is not None:
                    self.log.add(fault)
        finally:
            connections.close_all()


# -- the database server --------------------------------------------------------


def _require_local() -> None:
    host = str(connection.settings_dict.get("HOST") or "")
    if host not in LOCAL_HOSTS:
        raise RuntimeError(f"chaos faults only target local servers; HOST is {host!r}")


def _wait_answering(timeout: float = 120.0) -> float:
    """Wait until the server runs queries again; the time it first did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection.close()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return time.time()
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"the {connection.vendor} server did not come back within {timeout}s")


def cannot_restart() -> str | None:
    """Why this machine's database server cannot be restarted from here, or None."""
    if os.geteuid() != 0:
        return "restarting the database server needs root"
    if connection.vendor == "postgresql":
        if not shutil.which("pg_ctlcluster") or not Path("/etc/postgresql").is_dir():
            return "no local PostgreSQL cluster (pg_ctlcluster)"
    elif connection.vendor == "mysql":
        if not shutil.which("start-stop-daemon") or not Path(MARIADBD).exists():
            return f"no local MariaDB ({MARIADBD}, start-stop-daemon)"
    else:
        return f"{connection.vendor} has no server"
    host = str(connection.settings_dict.get("HOST") or "")
    return None if host in LOCAL_HOSTS else f"the server at {host!r} is not local"


def restart_database() -> Fault:
    """Restart the local database server (PostgreSQL or MariaDB) with its own
    service command, and wait for it to answer again."""
    _require_local()
    vendor = connection.vendor
    connections.close_all()
    at = time.time()
    if vendor == "postgresql":
        version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    elif vendor == "mysql":
        admin = shutil.which("mariadb-admin") or shutil.which("mysqladmin") or "mysqladmin"
        user = str(connection.settings_dict.get("USER") or "root")
        try:
            subprocess.run(
                [admin, "-h", "127.0.0.1", "-u", user, "shutdown"],
                capture_output=True,
                timeout=120,
            )
            # The client returns before the server process has exited; starting
            # while it still runs would be a no-op (--oknodo).
            deadline = time.monotonic() + 60
            while _mariadbd_running() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            start_mariadb()
    else:
        raise RuntimeError(f"no server to restart for {vendor}")
    back = _wait_answering()
    connections.close_all()
    return Fault("restart-database", at, back_at=back)


def _mariadbd_running() -> bool:
    status = subprocess.run(
        ["start-stop-daemon", "--status", "--exec", MARIADBD], capture_output=True, timeout=30
    )
    return status.returncode == 0


def start_mariadb() -> None:
    """The machine's own start command for MariaDB (a no-op while it runs)."""
    subprocess.run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", MARIADBD],
        check=True,
        capture_output=True,
        timeout=60,
    )


def kill_sessions() -> Fault:
    """End every server session on the test databases but this one, from the
    server side (what a failover or an administrator's kill does)."""
    _require_local()
    names = {str(connections[alias].settings_dict["NAME"]) for alias in connections}
    at = time.time()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                [sorted(names)],
            )
            killed = sum(1 for (ended,) in cursor.fetchall() if ended)
        elif connection.vendor == "mysql":
            cursor.execute(
                "SELECT id FROM information_schema.processlist "
                "WHERE db IN %s AND id <> CONNECTION_ID()",
                [tuple(sorted(names))],
            )
            killed = 0
            for (session,) in cursor.fetchall():
                # A session may end by itself between the read and the KILL.
                with contextlib.suppress(Exception):
                    cursor.execute("KILL CONNECTION %s", [int(session)])
                    killed += 1
        else:
            raise RuntimeError(f"no server sessions to kill on {connection.vendor}")
    connections.close_all()
    return Fault("kill-sessions", at, count=killed)
