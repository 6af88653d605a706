"""What the measurements stand on: a scratch database, emptied tables between
measurements, runtime subprocesses that are always stopped, the database server's lock
counters, and a watch on how busy the machine is.

Also imported by bench/peer_child.py inside the peer's virtualenv: Django and the
standard library only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

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


def innodb_counters() -> dict[str, int]:
    """MariaDB/MySQL server-wide InnoDB deadlocks and row lock waits so far; else {}.

    Server-wide: anything else the server runs meanwhile counts too.
    """
    if connection.vendor != "mysql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('Innodb_deadlocks', 'Innodb_row_lock_waits')"
        )
        found = {name.lower(): int(value) for name, value in cursor.fetchall()}
    return {
        "deadlocks": found["innodb_deadlocks"],
        "row_lock_waits": found["innodb_row_lock_waits"],
    }


def counter_change(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in before}


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

    def __init__(
        self,
        label: str,
        commands: list[list[str]],
        env: dict[str, str],
        *,
        interpreter: Sequence[str] = (),
        cwd: Path = ROOT,
    ) -> None:
        """``interpreter``: the python and its flags (default: this one, no flags)."""
        python = list(interpreter) or [sys.executable]
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
                        [*python, "-m", "django", *command],
                        cwd=cwd,
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


# -- how busy the machine is ----------------------------------------------------------

IDLE_SAMPLE_SECONDS = 0.4
BUSY_LOADAVG = 0.5  # 1-minute load average at the start
BUSY_FRACTION = 0.15  # of all cores, busy while the benchmark itself was idle
BUSY_PROCESS = 0.25  # of one core, one process of someone else's, in one idle sample


class LoadWatch:
    """The machine's load outside the measured processes.

    Between measurements, when the benchmark runs nothing, ``sample()`` reads
    /proc/stat (all cores) and /proc/<pid>/stat (every process) over a short sleep:
    whatever was busy then was someone else's work, or the database server's own
    background work (autovacuum, purge) after the last measurement.
    """

    def __init__(self) -> None:
        self.loadavg_start = os.getloadavg()
        self.samples: list[dict[str, Any]] = []
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._ours = {os.getpid(), os.getppid()}

    def sample(self, moment: str) -> None:
        cpu_before, procs_before = _cpu_times(), _process_times()
        time.sleep(IDLE_SAMPLE_SECONDS)
        cpu_after, procs_after = _cpu_times(), _process_times()
        idle = cpu_after[0] - cpu_before[0]
        total = cpu_after[1] - cpu_before[1]
        busy: list[dict[str, Any]] = []
        for pid, (name, ticks) in procs_after.items():
            if pid in self._ours or pid not in procs_before:
                continue
            share = (ticks - procs_before[pid][1]) / self._ticks / IDLE_SAMPLE_SECONDS
            if share >= 0.05:
                busy.append({"pid": pid, "name": name, "core_share": round(share, 3)})
        busy.sort(key=lambda process: -process["core_share"])
        self.samples.append(
            {
                "moment": moment,
                "loadavg_1m": os.getloadavg()[0],
                "busy_fraction": 1 - idle / total if total else 0.0,
                "busy_processes": busy[:5],
            }
        )

    def summary(self) -> dict[str, Any]:
        busy = [sample["busy_fraction"] for sample in self.samples]
        mean_busy = sum(busy) / len(busy) if busy else 0.0
        heavy: dict[str, float] = {}
        for sample in self.samples:
            for process in sample["busy_processes"]:
                if process["core_share"] >= BUSY_PROCESS:
                    key = f"{process['name']} ({process['pid']})"
                    heavy[key] = max(heavy.get(key, 0.0), process["core_share"])
        warnings = []
        if self.loadavg_start[0] > BUSY_LOADAVG:
            warnings.append(f"1-minute load average {self.loadavg_start[0]:.2f} at the start")
        if mean_busy > BUSY_FRACTION:
            warnings.append(
                f"{mean_busy:.0%} of the CPU busy, on average, while the benchmark was idle"
            )
        if heavy:
            top = sorted(heavy.items(), key=lambda item: -item[1])[:4]
            shown = ", ".join(f"{name} {share:.0%} of a core" for name, share in top)
            warnings.append(f"other busy processes between measurements: {shown}")
        return {
            "loadavg_start": self.loadavg_start,
            "loadavg_end": os.getloadavg(),
            "idle_busy_fraction_mean": mean_busy,
            "idle_busy_fraction_max": max(busy, default=0.0),
            "idle_sample_seconds": IDLE_SAMPLE_SECONDS,
            "samples": self.samples,
            "warnings": warnings,
        }


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies over all cores; iowait counts as idle, guest is in user."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    return fields[3] + fields[4], sum(fields)


def _process_times() -> dict[int, tuple[str, int]]:
    """pid -> (command name, user + system clock ticks so far)."""
    return {stat.pid: (stat.name, stat.ticks) for stat in process_stats()}


class ProcessStat(NamedTuple):
    pid: int
    name: str
    session: int
    ticks: int  # user + system clock ticks of the process itself
    ticks_with_children: int  # and of its children that exited and were waited for


def process_stats() -> Iterator[ProcessStat]:
    """What /proc/<pid>/stat says of every process still there."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        own = int(fields[11]) + int(fields[12])
        yield ProcessStat(
            int(entry.name),
            text[text.index("(") + 1 : text.rindex(")")],
            int(fields[3]),
            own,
            own + int(fields[13]) + int(fields[14]),
        )
