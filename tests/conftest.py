from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections
from django.tasks import task_backends

from dj_queue.operations.processes import register_process

ROOT = Path(__file__).resolve().parent.parent


# Tests marked slow (they wait on wall-clock minutes) run in CI (CI=true) or
# with DJ_QUEUE_SLOW_TESTS=1, and are skipped in a developer's default run.
RUN_SLOW = os.environ.get("CI") == "true" or os.environ.get("DJ_QUEUE_SLOW_TESTS") == "1"


def pytest_collection_modifyitems(items):
    # A runtime subprocess checks its models against every database they may be
    # routed to, so both test databases must exist whenever one is started.
    for item in items:
        if {"start_runtime", "runtime_env"} & set(getattr(item, "fixturenames", ())):
            marker = pytest.mark.django_db(transaction=True, databases=["default", "queue"])
            item.add_marker(marker, append=False)
        if "slow" in item.keywords and not RUN_SLOW:
            item.add_marker(pytest.mark.skip(reason="slow: set DJ_QUEUE_SLOW_TESTS=1 to run"))


@pytest.fixture
def backend():
    return task_backends["default"]


@pytest.fixture
def worker_process(db):
    """A registered worker process row to claim jobs for."""
    return register_process("default", kind="worker", name="test-worker", backend_alias="default")


class Runtime:
    """A real ``manage.py dj_queue`` subprocess against the test database."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.output_path = (
            Path(os.environ.get("TMPDIR", "/tmp"))
            / f"dj_queue_rt_{os.getpid()}_{time.monotonic_ns()}.log"
        )
        self.output = self.output_path.open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "dj_queue", *args],
            cwd=ROOT,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            # Its own process group, so a test can kill the whole tree at once.
            start_new_session=True,
        )

    def log(self) -> str:
        self.output.flush()
        return self.output_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in runtime output:\n{self.log()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.kill_tree()

    def kill_tree(self) -> None:
        """SIGKILL the supervisor and every child: a machine that died."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        self.kill_tree()
        self.output.close()
        self.output_path.unlink(missing_ok=True)


@pytest.fixture
def runtime_env(transactional_db) -> dict[str, str]:
    """Environment for a ``manage.py`` subprocess that sees this test's databases."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DJ_QUEUE_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "DJ_QUEUE_TEST_QUEUE_DB_NAME": str(connections["queue"].settings_dict["NAME"]),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_runtime(runtime_env) -> Iterator:
    """Start ``manage.py dj_queue`` subprocesses that see this test's database."""
    runtimes: list[Runtime] = []

    def start(*args: str, extra_env: dict[str, str] | None = None) -> Runtime:
        runtime = Runtime(list(args), {**runtime_env, **(extra_env or {})})
        runtimes.append(runtime)
        kind = "dispatcher" if "--only-dispatch" in args else "worker"
        runtime.wait_for_log(f"dj_queue: {kind} started")
        return runtime

    yield start
    for runtime in runtimes:
        runtime.close()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


def finished(result) -> bool:
    """Refresh a TaskResult; whether it has finished (successfully or not)."""
    result.refresh()
    return result.is_finished


def options_env(**options) -> dict[str, str]:
    """Environment that makes a test runtime merge ``options`` over its OPTIONS."""
    return {"DJ_QUEUE_TEST_OPTIONS": json.dumps(options)}


def tasks_setting(*, options: dict | None = None, **params) -> dict:
    """TASKS as the suite configures it, with the default backend changed."""
    tasks = copy.deepcopy(settings.TASKS)
    tasks["default"].update(params)
    if options is not None:
        tasks["default"]["OPTIONS"] = {**tasks["default"]["OPTIONS"], **options}
    return tasks
