"""What an embedded supervisor adds to an ASGI server's start and stop.

    .venv/bin/python bench/embedded.py [--runs 5]

Starts uvicorn on Django's ASGI application alone and wrapped in
``DjQueueLifespan``, taking turns, ``--runs`` times each (the test suite's
settings and server modules, on scratch SQLite files migrated for the run), and
prints the median seconds from launch to the first answered request and from
SIGTERM to exit, with the difference.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "plain": "tests.servers.asgi_plain:application",
    "wrapped": "tests.servers.asgi:application",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answered(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping/", timeout=2):
            return True
    except OSError:
        return False


def one_run(app: str, env: dict[str, str]) -> tuple[float, float]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--port", str(port), "--lifespan", "auto", app]
    began = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not answered(port):
            if process.poll() is not None or time.monotonic() - began > 60:
                raise RuntimeError(f"uvicorn serving {app} did not come up")
            time.sleep(0.01)
        started = time.monotonic() - began
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        return started, time.monotonic() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DJ_QUEUE_TEST_DB": "sqlite",
            "DJ_QUEUE_TEST_DB_NAME": str(Path(scratch) / "bench.sqlite3"),
            "DJ_QUEUE_TEST_QUEUE_DB_NAME": str(Path(scratch) / "bench_queue.sqlite3"),
            "PYTHONPATH": str(ROOT),
        }
        for database in ("default", "queue"):
            migrate = [sys.executable, "-m", "django", "migrate", "--database", database, "-v", "0"]
            subprocess.run(migrate, cwd=ROOT, env=env, check=True)
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in APPS}
        for _ in range(args.runs):
            for name, app in APPS.items():
                figures[name].append(one_run(app, env))
    medians = {
        name: (statistics.median(s for s, _ in runs), statistics.median(t for _, t in runs))
        for name, runs in figures.items()
    }
    (plain_start, plain_stop), (wrapped_start, wrapped_stop) = medians["plain"], medians["wrapped"]
    print(f"uvicorn on SQLite, median of {args.runs} runs each, seconds:")
    print(f"  {'':24} {'plain':>8} {'wrapped':>8} {'added':>8}")
    print(
        f"  {'launch -> first answer':24} {plain_start:8.3f} {wrapped_start:8.3f} "
        f"{wrapped_start - plain_start:8.3f}"
    )
    print(
        f"  {'SIGTERM -> exit':24} {plain_stop:8.3f} {wrapped_stop:8.3f} "
        f"{wrapped_stop - plain_stop:8.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
