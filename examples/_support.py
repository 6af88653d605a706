"""What every example shares: settings, scratch databases, the runtime, waiting.

An example is a module that calls :func:`configure` first, then defines its
tasks and a ``main()``, and hands that to :func:`run`::

    import _support as example

    example.configure()

    from django.tasks import task

    @task
    def add(a, b):
        return a + b

    def main():
        with example.runtime():
            result = example.wait(add.enqueue(3, 7))
            print(result.return_value)

    if __name__ == "__main__":
        example.run(main)

Started as a script, the file runs twice in the example's own process: as
``__main__``, then imported under its real name (the name runtime processes
know its tasks by), whose ``main`` is the one run. A module-level signal
receiver therefore needs a ``dispatch_uid`` to be connected once.

``configure`` makes a temporary directory and the example's databases (SQLite
files there by default; scratch databases on a local server when
``DJ_QUEUE_EXAMPLE_DB`` is ``postgresql`` or ``mariadb``), starts Django with
``_settings`` and migrates. Everything it made is removed when the example
exits, whichever way it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps

if TYPE_CHECKING:
    from django.tasks import TaskResult

EXAMPLES_DIR = Path(__file__).resolve().parent
VENDORS = ("sqlite", "postgresql", "mariadb")
STARTUP_TIMEOUT = 20.0
LOG_TAIL_LINES = 30

# Short intervals, so every example starts, works and stops in seconds.
DEFAULT_OPTIONS: dict[str, Any] = {
    "workers": [{"queues": ["*"], "threads": 2, "polling_interval": 0.1}],
    "dispatchers": [{"polling_interval": 0.1}],
    "process_heartbeat_interval": 1,
    "process_alive_threshold": 5,
    "shutdown_timeout": 5,
}

# The root URLconf when an example serves no pages of its own.
urlpatterns: list[Any] = []


class ExampleFailed(Exception):
    """Something the example checks did not happen; it explains and exits 1."""


class ExampleConfig(AppConfig):
    """Imports the running example's module once Django is ready.

    Its tasks are then registered in the example's process and in every
    runtime process it starts, which all load the same settings.
    """

    name = "_support"
    label = "dj_queue_example"
    verbose_name = "dj_queue example"

    def ready(self) -> None:
        importlib.import_module(os.environ["DJ_QUEUE_EXAMPLE_MODULE"])


@dataclass
class _State:
    module: str = ""
    vendor: str = "sqlite"
    workdir: Path | None = None
    server_databases: list[str] = field(default_factory=list)
    processes: list[Background] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


_state = _State()


def say(message: str) -> None:
    print(message, flush=True)


def check(condition: object, message: str) -> None:
    """Fail the example with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExampleFailed(message)


# -- configuration ----------------------------------------------------------------


def configure(
    *,
    options: Mapping[str, Any] | None = None,
    queues: Sequence[str] = (),
    databases: Sequence[str] = ("default",),
    admin: bool = False,
    urls: str | None = None,
    migrate: bool = True,
) -> None:
    """Set Django up for the calling example; does nothing once Django runs.

    ``options`` are merged over :data:`DEFAULT_OPTIONS` key by key;
    ``databases`` names the aliases to create (each its own SQLite file or
    scratch database); ``admin`` adds the admin and the apps it needs.
    """
    if apps.loading or apps.ready:
        # Django is already set up: this is the example's module being
        # imported by ExampleConfig, here or in a runtime subprocess.
        return
    caller = sys._getframe(1).f_globals
    _state.module = Path(caller["__file__"]).stem
    _state.vendor = os.environ.get("DJ_QUEUE_EXAMPLE_DB", "sqlite")
    if _state.vendor not in VENDORS:
        raise SystemExit(f"DJ_QUEUE_EXAMPLE_DB={_state.vendor!r}: use one of {', '.join(VENDORS)}.")
    _state.workdir = Path(tempfile.mkdtemp(prefix=f"dj_queue_{_state.module}_"))
    os.environ["DJ_QUEUE_EXAMPLE_WORKDIR"] = str(_state.workdir)
    atexit.register(_clean_up)

    choices = {
        "databases": {alias: _database(alias) for alias in databases},
        "options": {**DEFAULT_OPTIONS, **(options or {})},
        "queues": list(queues),
        "admin": admin,
        "urls": urls,
    }
    os.environ["DJ_QUEUE_EXAMPLE_SETTINGS"] = json.dumps(choices)
    os.environ["DJ_QUEUE_EXAMPLE_MODULE"] = _state.module
    # Forced, not defaulted: a DJANGO_SETTINGS_MODULE left in the shell must not win.
    os.environ["DJANGO_SETTINGS_MODULE"] = "_settings"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLES_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        for alias in databases:
            call_command("migrate", database=alias, verbosity=0, interactive=False)


def database_vendor() -> str:
    """``sqlite``, ``postgresql`` or ``mariadb``: what this run uses."""
    return os.environ.get("DJ_QUEUE_EXAMPLE_DB", "sqlite")


def workdir() -> Path:
    """The example's temporary directory (SQLite files, runtime logs, scratch
    files), the same path in the example's process and its runtime processes."""
    path = os.environ.get("DJ_QUEUE_EXAMPLE_WORKDIR")
    if path is None:
        raise RuntimeError("call _support.configure() first")
    return Path(path)


def _database(alias: str) -> dict[str, Any]:
    vendor = _state.vendor
    if vendor == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(workdir() / f"{alias}.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    name = f"dj_queue_{_state.module[:24]}_{alias}_{os.getpid()}"
    _create_server_database(name)
    _state.server_databases.append(name)
    if vendor == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "HOST": os.environ.get("DJ_QUEUE_EXAMPLE_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("DJ_QUEUE_EXAMPLE_PG_PORT", "5432"),
            "USER": os.environ.get("DJ_QUEUE_EXAMPLE_PG_USER", "postgres"),
        }
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": name,
        "HOST": os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_PORT", "3306"),
        "USER": os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_PASSWORD", ""),
        "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
    }


@contextlib.contextmanager
def _server_cursor() -> Iterator[Any]:
    """A cursor on the server itself, outside Django, for CREATE and DROP DATABASE."""
    if _state.vendor == "postgresql":
        import psycopg

        with psycopg.connect(
            host=os.environ.get("DJ_QUEUE_EXAMPLE_PG_HOST", "127.0.0.1"),
            port=os.environ.get("DJ_QUEUE_EXAMPLE_PG_PORT", "5432"),
            user=os.environ.get("DJ_QUEUE_EXAMPLE_PG_USER", "postgres"),
            dbname="postgres",
            autocommit=True,
        ) as connection:
            yield connection.cursor()
        return
    import MySQLdb

    connection = MySQLdb.connect(
        host=os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_PORT", "3306")),
        user=os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_USER", "root"),
        password=os.environ.get("DJ_QUEUE_EXAMPLE_MYSQL_PASSWORD", ""),
    )
    try:
        yield connection.cursor()
    finally:
        connection.close()


def _create_server_database(name: str) -> None:
    with _server_cursor() as cursor:
        if _state.vendor == "postgresql":
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        else:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


def _clean_up() -> None:
    for process in reversed(_state.processes):
        process.kill()
    if _state.server_databases:
        from django.db import connections

        connections.close_all()
        with _server_cursor() as cursor:
            for name in _state.server_databases:
                if _state.vendor == "postgresql":
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        _state.server_databases.clear()
    if _state.workdir is not None:
        shutil.rmtree(_state.workdir, ignore_errors=True)


# -- running an example -----------------------------------------------------------


def run(main: Callable[[], object]) -> None:
    """Run the example's ``main()`` and exit: 0 if it got through, 1 if not.

    Started as a script, the example's file runs as ``__main__``; its tasks
    must be known by their module's real name (the one runtime processes
    import), so the ``main`` of that module is the one called.
    """
    if main.__module__ == "__main__":
        main = getattr(importlib.import_module(_state.module), main.__name__)
    status = 0
    try:
        main()
    except ExampleFailed as exc:
        status = 1
        print(f"\nexample failed: {exc}", file=sys.stderr)
        for process in _state.processes:
            print(f"--- last lines of {process.log_path.name} ---", file=sys.stderr)
            print(process.log_tail(), file=sys.stderr)
    except KeyboardInterrupt:
        status = 130
    finally:
        for process in reversed(_state.processes):
            process.kill()
    elapsed = time.monotonic() - _state.started
    say(
        f"({_state.module} on {_state.vendor}: {'ok' if status == 0 else 'FAILED'}, {elapsed:.1f}s)"
    )
    sys.exit(status)


# -- processes --------------------------------------------------------------------


@dataclass
class Background:
    """A subprocess of the example with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        return "\n".join(self.log().splitlines()[-LOG_TAIL_LINES:]) or "(empty)"

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, the graceful stop, and wait for the exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ExampleFailed(
                f"{self.name} did not exit within {timeout:g}s of SIGTERM"
            ) from None

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait()


def start(name: str, command: Sequence[str], *, env: Mapping[str, str] | None = None) -> Background:
    """Start ``command`` in the background, logging to ``<name>.log`` in the workdir."""
    log_path = workdir() / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            cwd=EXAMPLES_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C in the terminal reaches the
            # example, which then stops its children itself.
            start_new_session=True,
        )
    background = Background(name, process, log_path)
    _state.processes.append(background)
    return background


def manage(
    *arguments: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``django-admin <arguments>`` against the example's settings and wait."""
    return subprocess.run(
        [sys.executable, "-m", "django", *arguments],
        cwd=EXAMPLES_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Runtime(Background):
    """A ``manage.py dj_queue`` process tree."""

    def processes(self) -> list[Any]:
        """This supervisor's registered children, as Process rows."""
        from dj_queue.models import Process

        return list(Process.objects.filter(supervisor__pid=self.pid).order_by("kind", "pid"))

    def wait_until_ready(self) -> None:
        """Until the supervisor and every child it runs have registered."""
        from dj_queue.management.commands.dj_queue_health import expected_children
        from dj_queue.models import Process

        def ready() -> bool:
            if not self.running():
                raise ExampleFailed(f"{self.name} exited with code {self.process.returncode}")
            supervisor = Process.objects.filter(kind="supervisor", pid=self.pid).first()
            if supervisor is None:
                return False
            children = Counter(
                Process.objects.filter(supervisor=supervisor).values_list("kind", flat=True)
            )
            expected = expected_children(supervisor.metadata)
            return all(children[kind] >= count for kind, count in expected.items())

        wait_until(ready, timeout=STARTUP_TIMEOUT, what=f"{self.name} to start")


def start_runtime(
    *flags: str, name: str = "runtime", env: Mapping[str, str] | None = None
) -> Runtime:
    """Start ``manage.py dj_queue <flags>`` and wait until every process registered."""
    background = start(
        name,
        [sys.executable, "-m", "django", "dj_queue", *flags],
        env={"DJ_QUEUE_EXAMPLE_LOG_LEVEL": "INFO", **(env or {})},
    )
    runtime = Runtime(background.name, background.process, background.log_path)
    _state.processes[-1] = runtime
    runtime.wait_until_ready()
    return runtime


@contextlib.contextmanager
def runtime(
    *flags: str, name: str = "runtime", env: Mapping[str, str] | None = None
) -> Iterator[Runtime]:
    """``manage.py dj_queue <flags>`` for the length of the ``with`` block.

    Leaving the block stops it with SIGTERM, as a deployment would, and checks
    that it exited cleanly.
    """
    node = start_runtime(*flags, name=name, env=env)
    shown = " ".join(["manage.py dj_queue", *flags])
    say(f"started `{shown}` (supervisor pid {node.pid})")
    yield node
    code = node.stop()
    check(code == 0, f"{name} exited with code {code} after SIGTERM")


# -- waiting ----------------------------------------------------------------------


def wait_until(condition: Callable[[], object], *, timeout: float = 15.0, what: str) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ExampleFailed(f"waited {timeout:g}s for {what}")
        time.sleep(0.05)


def finished(result: TaskResult) -> bool:
    return result.status.value in ("SUCCESSFUL", "FAILED")


def wait(result: TaskResult, *, timeout: float = 15.0) -> TaskResult:
    """The job's result once it has finished, read fresh from the database."""
    return wait_all([result], timeout=timeout)[0]


def wait_all(results: Iterable[TaskResult], *, timeout: float = 15.0) -> list[TaskResult]:
    """Every job's result once all have finished."""
    pending = list(results)

    def all_finished() -> list[TaskResult] | None:
        fresh = [result.task.get_backend().get_result(result.id) for result in pending]
        return fresh if all(finished(result) for result in fresh) else None

    return wait_until(all_finished, timeout=timeout, what=f"{len(pending)} job(s) to finish")


def wait_for_url(url: str, *, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until ``url`` answers at all (any status), as a server's readiness check."""

    def answers() -> bool:
        for process in _state.processes:
            if not process.running():
                raise ExampleFailed(f"{process.name} exited with code {process.process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    wait_until(answers, timeout=timeout, what=f"{url} to answer")


def fetch(url: str, *, data: bytes | None = None) -> str:
    """The body of ``url`` (a POST when ``data`` is given)."""
    with urllib.request.urlopen(url, data=data, timeout=10) as response:
        return response.read().decode()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
