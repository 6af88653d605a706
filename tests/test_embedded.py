"""Embedded mode end to end: real uvicorn and gunicorn servers as subprocesses,
running the queue in their own processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus

from dj_queue.models import Process
from tests.conftest import ROOT, finished, wait_until
from tests.invariants import assert_invariants
from tests.taskapp.tasks import report_pid

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "queue"])

SERVERS = ROOT / "tests" / "servers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server subprocess in its own process group, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], tmp_path: Path) -> None:
        self.port = free_port()
        self.output_path = tmp_path / f"server-{self.port}.log"
        self.output = self.output_path.open("w+")
        self.started = time.monotonic()
        command = [arg.replace("{port}", str(self.port)) for arg in args]
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        self.output.flush()
        return self.output_path.read_text()

    def get(self, path: str = "/ping/") -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def wait_serving(self, timeout: float = 30.0) -> float:
        """Seconds from launch until a request was answered."""
        deadline = time.monotonic() + timeout
        while self.get() is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server is not serving:\n{self.log()}")
            time.sleep(0.05)
        return time.monotonic() - self.started

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; the exit status and the seconds the stop took."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - began

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.output.close()


@pytest.fixture
def serve(runtime_env, tmp_path):
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(list(args), runtime_env, tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def health(*args: str) -> int:
    try:
        call_command("dj_queue_health", *args, stdout=StringIO())
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


def embedded_supervisors() -> list[Process]:
    return [p for p in Process.objects.filter(kind="supervisor") if p.metadata.get("embedded")]


UVICORN = ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--lifespan", "on"]


@pytest.mark.parametrize("module", ["asgi", "asgi_setup_first"])
def test_uvicorn_runs_jobs_in_its_own_process_and_stops_cleanly(serve, module):
    server = serve(*UVICORN, f"tests.servers.{module}:application")
    took = server.wait_serving()
    wait_until(lambda: len(embedded_supervisors()) == 1, message=server.log())
    print(f"uvicorn ({module}) served its first request {took:.2f}s after launch")

    results = [report_pid.enqueue() for _ in range(5)]
    wait_until(lambda: all(finished(r) for r in results), message=server.log())

    assert {r.status for r in results} == {TaskResultStatus.SUCCESSFUL}
    assert {r.return_value for r in results} == {server.process.pid}
    assert server.get() == {"pid": server.process.pid}, "requests are still served"
    probe = ["--supervisor-pid", str(server.process.pid), "--max-age", "3"]
    assert health(*probe) == 0, "an embedded supervisor reads healthy"
    code, stop_took = server.terminate()
    print(f"uvicorn ({module}) stopped {stop_took:.2f}s after SIGTERM")
    # Uvicorn re-raises the signal it stopped on once it has shut down cleanly.
    assert code in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()
    assert not Process.objects.exists(), "nothing left registered"
    assert health(*probe) == 1
    if module == "asgi_setup_first":
        log = server.log()
        assert "inner app got lifespan.startup" in log
        assert "inner app got lifespan.shutdown" in log
    assert_invariants()


def test_uvicorn_reports_a_startup_failure(serve):
    server = serve(*UVICORN, "tests.servers.asgi_broken:application")

    code = server.process.wait(30)

    assert code != 0
    log = server.log()
    assert "dj_queue could not start" in log and "'missing'" in log, log
    assert not Process.objects.exists()


@pytest.mark.parametrize("conf", ["gunicorn_conf.py", "gunicorn_preload_conf.py"])
def test_gunicorn_workers_each_run_an_embedded_supervisor(serve, conf):
    server = serve(
        "gunicorn",
        "-c",
        str(SERVERS / conf),
        "-w",
        "2",
        "-b",
        "127.0.0.1:{port}",
        "--graceful-timeout",
        "20",
        "tests.servers.wsgi:application",
    )
    server.wait_serving()
    supervisors = wait_until(
        lambda: len(embedded_supervisors()) == 2 and embedded_supervisors(), message=server.log()
    )
    worker_pids = {supervisor.pid for supervisor in supervisors}
    assert server.process.pid not in worker_pids, "the arbiter runs no queue"

    results = [report_pid.enqueue() for _ in range(40)]
    wait_until(lambda: all(finished(r) for r in results), message=server.log())

    assert {r.status for r in results} == {TaskResultStatus.SUCCESSFUL}
    assert {r.attempts for r in results} == {1}, "each job ran exactly once"
    assert {r.return_value for r in results} <= worker_pids
    code, _ = server.terminate()
    assert code == 0, server.log()
    assert not Process.objects.exists()
    assert_invariants()


def test_a_killed_gunicorn_worker_has_its_jobs_recovered_by_the_other(serve):
    from dj_queue.models import ClaimedExecution
    from tests.taskapp.tasks import sleep_for

    server = serve(
        "gunicorn",
        "-c",
        str(SERVERS / "gunicorn_conf.py"),
        "-w",
        "2",
        "-b",
        "127.0.0.1:{port}",
        "tests.servers.wsgi:application",
    )
    server.wait_serving()
    wait_until(lambda: len(embedded_supervisors()) == 2, message=server.log())
    result = sleep_for.enqueue(60)
    claim = wait_until(
        lambda: ClaimedExecution.objects.select_related("process").first(), message=server.log()
    )

    os.kill(claim.process.pid, signal.SIGKILL)

    # The survivor's supervisor prunes the dead worker once its heartbeat is
    # older than process_alive_threshold (5 s in the test settings).
    wait_until(lambda: finished(result), timeout=30, message=server.log())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessPrunedError"
    wait_until(
        lambda: not Process.objects.filter(pid=claim.process.pid).exists(),
        timeout=15,
        message=server.log(),
    )
    code, _ = server.terminate()
    assert code == 0, server.log()
