"""Where and how big a chaos scenario runs, its nodes, and the drain under faults.

A scenario enqueues its jobs, starts a ``cluster`` of nodes, and ``drain``s:
its fault strikes on a schedule until the jobs are done (or the deadline
passes), the claims left with no live process are counted while the nodes
still run, then the nodes stop.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connections
from django.tasks import Task, task_backends

from dj_queue.models import Job

from .faults import Fault, FaultLog, Schedule
from .ledger import ENV as LEDGER_ENV
from .nodes import Node, poll_until, wait_released
from .verdict import Report, stuck_claims

# Nodes presume each other dead after 2.5 s without a heartbeat, so pruning
# scenarios recover in seconds; workers poll often, like a busy production node.
# Four worker processes share the kills: a slot killed again soon after its start
# is restarted after a growing delay (the supervisor's crash-loop backoff).
NODE_OPTIONS: dict = {
    "workers": [{"queues": ["*"], "threads": 2, "processes": 4, "polling_interval": 0.05}],
    "dispatchers": [{"batch_size": 500, "polling_interval": 0.05}],
    "process_heartbeat_interval": 0.5,
    "process_alive_threshold": 2.5,
    "shutdown_timeout": 5,
}


@dataclass(frozen=True)
class Scale:
    jobs: int = 300
    job_seconds: float = 0.05
    every: float = 1.0  # seconds between two faults
    deadline: float = 120.0  # for the jobs to finish
    recurring_seconds: float = 8.0
    restarts: int = 1  # database restarts
    enqueuers: int = 4


@dataclass(frozen=True)
class Stage:
    """Where a scenario runs: the environment of its runtime subprocesses (which
    names the test databases), the database's name for the tables, and a
    scratch directory of its own."""

    env: dict[str, str]
    database: str
    workdir: Path
    seed: int = 0

    def ledger(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Cluster:
    stage: Stage
    ledger: Path
    options: dict
    args: tuple[str, ...]
    nodes: list[Node]
    retired: list[Node]

    def start(self, name: str, args: tuple[str, ...] | None = None) -> Node:
        env = {**self.stage.env, LEDGER_ENV: str(self.ledger)}
        node = Node(name, env, self.options, self.args if args is None else args)
        node.wait_started()
        self.nodes.append(node)
        return node

    def replace(self, node: Node) -> Node:
        """A dead or frozen node's place taken by a new one, as an orchestrator would."""
        self.nodes.remove(node)
        self.retired.append(node)
        return self.start(f"{node.name}'")


@contextlib.contextmanager
def cluster(
    stage: Stage,
    ledger: Path,
    count: int,
    *,
    options: dict | None = None,
    args: tuple[str, ...] = ("--skip-recurring",),
) -> Iterator[Cluster]:
    running = Cluster(stage, ledger, {**NODE_OPTIONS, **(options or {})}, args, [], [])
    try:
        for index in range(count):
            running.start(f"node-{index}")
        yield running
    finally:
        for node in running.nodes + running.retired:
            with contextlib.suppress(Exception):
                node.stop(timeout=30)
            node.close()
        connections.close_all()


def enqueue(task: Task, kwargs: list[dict]) -> set[str]:
    backend = task_backends["default"]
    ids: set[str] = set()
    for start in range(0, len(kwargs), 500):
        calls = [(task, (), call) for call in kwargs[start : start + 500]]
        ids.update(result.id for result in backend.enqueue_all(calls))
    return ids


def unfinished() -> bool:
    """Whether any job is still to finish; True while the database is away."""
    try:
        return Job.objects.filter(finished_at__isnull=True).exists()
    except Exception:
        connections.close_all()
        return True


def drain(
    cluster_: Cluster,
    report: Report,
    every: float,
    strike: Callable[[], Fault | None],
    deadline: float,
    *,
    until: Callable[[], bool] | None = None,
    first: float | None = None,
) -> FaultLog:
    """Strike every ``every`` seconds until no job is left to finish (or ``until``
    says so); then count the stuck claims and stop the nodes."""
    log = FaultLog()
    started = time.monotonic()
    done = until or (lambda: not unfinished())
    with Schedule(log, every, strike, first):
        while time.monotonic() - started < deadline and not done():
            time.sleep(0.1)
    report.seconds = time.monotonic() - started
    # The last fault may have struck just before the end: give recovery one
    # alive threshold to settle what it left, then look for stuck claims.
    settle = time.monotonic() + NODE_OPTIONS["process_alive_threshold"] * 2 + 5
    while unfinished() and time.monotonic() < settle:
        time.sleep(0.1)
    report.stuck = with_retries(stuck_claims)
    for node in cluster_.nodes:
        node.stop(timeout=30)
    connections.close_all()
    return log


def with_retries(read_: Callable[[], int]) -> int:
    for _ in range(50):
        try:
            return read_()
        except Exception:
            connections.close_all()
            time.sleep(0.2)
    return read_()


def faults_struck(report: Report, log: FaultLog) -> None:
    if not log.faults:
        report.problem("no fault struck: the run proves nothing")


def kill_a_child(
    running: Cluster, rng: random.Random, kind: str = "worker"
) -> Callable[[], Fault | None]:
    def strike() -> Fault | None:
        node = rng.choice(running.nodes)
        at = time.time()
        victim = node.kill_child(kind, rng)
        if victim is None:
            return None
        return Fault(f"kill-{kind}", at, (victim.pid,), settled_at=wait_released([victim.pk]))

    return strike


def wait_resumed(timeout: float = 120.0) -> float | None:
    """Wait until one more job is recorded finished (or none is left to); when."""
    finished = Job.objects.filter(finished_at__isnull=False)
    before = with_retries(finished.count)

    return poll_until(lambda: finished.count() > before or not unfinished(), timeout)
