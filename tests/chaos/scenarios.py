"""The chaos scenarios: jobs drained by real nodes while one kind of fault strikes.

Each scenario enqueues its jobs, starts its nodes, injects its fault on a
schedule until the jobs are done (or the deadline passes), counts the claims
left with no live process while the nodes still run, stops the nodes and
judges the ledger against the tables. ``Scale`` sets the sizes: the tests run
them small, bench/chaos.py at full size.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from django.db import connection, connections
from django.tasks import Task, task_backends

from dj_queue.models import Job

from .faults import (
    Fault,
    FaultLog,
    Schedule,
    cannot_restart,
    kill_sessions,
    restart_database,
)
from .ledger import ENV as LEDGER_ENV
from .ledger import read, runs
from .nodes import Node, wait_released
from .verdict import Report, double_fires, judge, stuck_claims

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


def _unfinished() -> bool:
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
    done = until or (lambda: not _unfinished())
    with Schedule(log, every, strike, first):
        while time.monotonic() - started < deadline and not done():
            time.sleep(0.1)
    report.seconds = time.monotonic() - started
    # The last fault may have struck just before the end: give recovery one
    # alive threshold to settle what it left, then look for stuck claims.
    settle = time.monotonic() + NODE_OPTIONS["process_alive_threshold"] * 2 + 5
    while _unfinished() and time.monotonic() < settle:
        time.sleep(0.1)
    report.stuck = _with_retries(stuck_claims)
    for node in cluster_.nodes:
        node.stop(timeout=30)
    connections.close_all()
    return log


def _with_retries(read_: Callable[[], int]) -> int:
    for _ in range(50):
        try:
            return read_()
        except Exception:
            connections.close_all()
            time.sleep(0.2)
    return read_()


def _faults_struck(report: Report, log: FaultLog) -> None:
    if not log.faults:
        report.problem("no fault struck: the run proves nothing")


def _kill_a_child(
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


# -- the scenarios --------------------------------------------------------------


def worker_kills(stage: Stage, scale: Scale) -> Report:
    """Worker children SIGKILLed while jobs that allow retries drain: each job
    ends SUCCESSFUL; a job runs twice only after a death interrupted it."""
    from tests.taskapp.chaos import chaos_step

    report = Report("worker SIGKILL, retries allowed", stage.database)
    ledger = stage.ledger("worker_kills")
    ids = enqueue(chaos_step, [{"seconds": scale.job_seconds}] * scale.jobs)
    rng = random.Random(stage.seed)
    with cluster(stage, ledger, 1) as running:
        log = drain(running, report, scale.every, _kill_a_child(running, rng), scale.deadline)
    _faults_struck(report, log)
    return judge(report, ledger, log, ids)


def worker_kills_once(stage: Stage, scale: Scale) -> Report:
    """The same with ``max_attempts = 1``: nothing runs twice, and every job a
    death interrupted ends FAILED (ProcessExitError), none is lost."""
    from tests.taskapp.chaos import chaos_once

    report = Report("worker SIGKILL, max_attempts 1", stage.database)
    ledger = stage.ledger("worker_kills_once")
    ids = enqueue(chaos_once, [{"seconds": scale.job_seconds}] * scale.jobs)
    rng = random.Random(stage.seed)
    with cluster(stage, ledger, 1) as running:
        log = drain(running, report, scale.every, _kill_a_child(running, rng), scale.deadline)
    _faults_struck(report, log)
    return judge(report, ledger, log, ids, retries_allowed=False)


def node_kills(stage: Stage, scale: Scale) -> Report:
    """Whole nodes (supervisor and children) SIGKILLed in turn, each replaced by a
    new node: the survivor prunes the dead one and its jobs run again."""
    from tests.taskapp.chaos import chaos_step

    report = Report("node SIGKILL (1 of 2)", stage.database)
    ledger = stage.ledger("node_kills")
    # Longer jobs: two nodes drain fast, and the kill must find work in flight.
    seconds = max(scale.job_seconds, 0.1)
    ids = enqueue(chaos_step, [{"seconds": seconds}] * scale.jobs)
    with cluster(stage, ledger, 2) as running:

        def strike() -> Fault:
            victim = running.nodes[0]
            registered = victim.registered()
            at = time.time()
            pids = tuple(victim.kill())
            running.replace(victim)
            return Fault("kill-node", at, pids, settled_at=wait_released(registered))

        # A node's death is noticed only after the alive threshold: strike less often.
        every = max(scale.every * 3, NODE_OPTIONS["process_alive_threshold"])
        log = drain(running, report, every, strike, scale.deadline, first=0.5)
    _faults_struck(report, log)
    return judge(report, ledger, log, ids)


def frozen_node(stage: Stage, scale: Scale) -> Report:
    """A node SIGSTOPped until the other one pruned it, then SIGCONTed: it must
    notice it was pruned and stop, and whatever its jobs did after the thaw must
    not be recorded (the jobs ran again elsewhere)."""
    from tests.taskapp.chaos import chaos_step

    report = Report("node frozen (SIGSTOP) past pruning", stage.database)
    ledger = stage.ledger("frozen_node")
    # Longer jobs, so the frozen node holds some when it stops.
    seconds = max(scale.job_seconds, 0.2)
    ids = enqueue(chaos_step, [{"seconds": seconds}] * scale.jobs)
    thaws: list[tuple[float, tuple[int, ...]]] = []
    exits: list[float] = []
    with cluster(stage, ledger, 2) as running:

        def strike() -> Fault | None:
            if len(thaws) >= scale.restarts:
                return None
            victim = running.nodes[0]
            registered = victim.registered()
            frozen_at = time.time()
            pids = tuple(victim.freeze())
            settled = wait_released(registered)
            # Before SIGCONT: a job whose sleep ran out while frozen ends at once.
            thawed = time.time()
            victim.thaw()
            thaws.append((thawed, pids))
            if victim.wait_exit(30):
                exits.append(time.time() - thawed)
            else:
                report.problem(f"node {victim.name} went on running after it was pruned")
            running.replace(victim)
            return Fault("freeze-node", frozen_at, pids, settled_at=settled)

        log = drain(running, report, scale.every * 2, strike, scale.deadline, first=scale.every)
    _faults_struck(report, log)
    judge(report, ledger, log, ids)
    late = [
        run
        for run in runs(read(ledger))
        for thawed, pids in thaws
        if run.pid in pids and run.ended is not None and run.ended >= thawed
    ]
    report.notes["runs that ended after the thaw (discarded)"] = len(late)
    if exits:
        report.notes["seconds from thaw to the frozen node's exit"] = round(max(exits), 2)
    recorded = 0
    for run in late:
        worker_ids = Job.objects.filter(pk=run.job).values_list("worker_ids", flat=True).first()
        if worker_ids and len(worker_ids) == run.attempt and worker_ids[-1] == run.worker:
            recorded += 1
    if recorded:
        report.problem(f"{recorded} outcome(s) of the pruned node were recorded")
    return report


def database_restart(stage: Stage, scale: Scale) -> Report:
    """The database server restarted mid-drain: the runtime rides the outage out
    and work resumes, nothing lost."""
    from tests.taskapp.chaos import chaos_step

    report = Report("database server restarted", stage.database)
    ledger = stage.ledger("database_restart")
    # Jobs long enough that work is left when the server comes back.
    seconds = max(scale.job_seconds, 0.1)
    ids = enqueue(chaos_step, [{"seconds": seconds}] * scale.jobs)
    # An outage of a few seconds must not look like dead processes.
    options = {"process_heartbeat_interval": 1, "process_alive_threshold": 30}
    with cluster(stage, ledger, 1, options=options) as running:
        restarts: list[Fault] = []

        def strike() -> Fault | None:
            if len(restarts) >= scale.restarts:
                return None
            fault = restart_database()
            fault = replace(fault, settled_at=wait_resumed())
            restarts.append(fault)
            return fault

        log = drain(running, report, scale.every * 3, strike, scale.deadline, first=0.5)
    _faults_struck(report, log)
    judge(report, ledger, log, ids)
    if restarts:
        report.notes["outage seconds"] = round(max((f.back_at or f.at) - f.at for f in restarts), 2)
    return report


def wait_resumed(timeout: float = 120.0) -> float | None:
    """Wait until one more job is recorded finished (or none is left to); when."""
    deadline = time.monotonic() + timeout
    before = None
    try:
        while time.monotonic() < deadline:
            try:
                done = Job.objects.filter(finished_at__isnull=False).count()
                if before is None:
                    before = done
                elif done > before or not _unfinished():
                    return time.time()
            except Exception:
                connections.close_all()
            time.sleep(0.02)
        return None
    finally:
        connections.close_all()


def session_kills(stage: Stage, scale: Scale) -> Report:
    """Every session of the test databases killed from the server side, again
    and again: each process reconnects, nothing lost."""
    from tests.taskapp.chaos import chaos_step

    report = Report("all sessions killed server-side", stage.database)
    ledger = stage.ledger("session_kills")
    ids = enqueue(chaos_step, [{"seconds": scale.job_seconds}] * scale.jobs)
    options = {"process_heartbeat_interval": 1, "process_alive_threshold": 30}
    with cluster(stage, ledger, 1, options=options) as running:

        def strike() -> Fault:
            return replace(kill_sessions(), settled_at=wait_resumed())

        log = drain(running, report, scale.every, strike, scale.deadline)
    _faults_struck(report, log)
    report.notes["sessions killed"] = sum(f.count for f in log.faults)
    return judge(report, ledger, log, ids)


def limited_under_kills(stage: Stage, scale: Scale) -> Report:
    """Jobs of four concurrency keys (limit 2 each) under worker kills: never
    more than two of a key running at once."""
    from tests.taskapp.chaos import chaos_limited

    report = Report("limit 2 per key under worker SIGKILL", stage.database)
    ledger = stage.ledger("limited_under_kills")
    calls = [{"key": f"k{n % 4}", "seconds": scale.job_seconds} for n in range(scale.jobs)]
    ids = enqueue(chaos_limited, calls)
    rng = random.Random(stage.seed)
    with cluster(stage, ledger, 1) as running:
        log = drain(running, report, scale.every, _kill_a_child(running, rng), scale.deadline)
    _faults_struck(report, log)
    return judge(report, ledger, log, ids, limit=2)


def recurring_two_nodes(stage: Stage, scale: Scale) -> Report:
    """Two full nodes fire the same every-second schedules while their scheduler
    children are SIGKILLed: every slot fires once, none twice."""
    from tests.taskapp.chaos import chaos_tick

    report = Report("recurring on 2 nodes, schedulers SIGKILLed", stage.database)
    ledger = stage.ledger("recurring_two_nodes")
    keys = [f"tick_{n}" for n in range(4)]
    recurring = {
        key: {
            "task_path": chaos_tick.module_path,
            "schedule": "* * * * * *",
            "kwargs": {"key": key},
        }
        for key in keys
    }
    rng = random.Random(stage.seed)
    started = time.monotonic()
    with cluster(stage, ledger, 2, options={"recurring": recurring}, args=()) as running:
        log = drain(
            running,
            report,
            scale.every * 2,
            _kill_a_child(running, rng, "scheduler"),
            scale.recurring_seconds + 30,
            until=lambda: time.monotonic() - started >= scale.recurring_seconds,
        )
        # The schedulers stopped with the nodes, perhaps right after firing:
        # a node without one runs what they left.
        drainer = running.start("drainer", ("--skip-recurring",))
        deadline = time.monotonic() + scale.deadline
        while _unfinished() and time.monotonic() < deadline:
            time.sleep(0.1)
        drainer.stop()
    _faults_struck(report, log)
    ids = {str(pk) for pk in Job.objects.values_list("pk", flat=True)}
    judge(report, ledger, log, ids, retries_allowed=False)
    doubled, fired, per_key = double_fires(chaos_tick.module_path, ledger)
    report.double_fires = doubled
    report.notes["slots fired"] = fired
    report.notes["slots per key (min)"] = min(per_key.values(), default=0)
    if doubled:
        report.problem(f"{doubled} recurring slot(s) fired twice")
    if min(per_key.get(key, 0) for key in keys) == 0:
        report.problem("a recurring task never fired")
    return report


def enqueue_burst(stage: Stage, scale: Scale) -> Report:
    """Several processes enqueue one job at a time while workers are SIGKILLed:
    every job an enqueue returned is there and finishes, and nothing else is."""
    report = Report("enqueue burst from processes, worker SIGKILL", stage.database)
    ledger = stage.ledger("enqueue_burst")
    outputs = [stage.workdir / f"enqueuer-{n}.txt" for n in range(scale.enqueuers)]
    each = scale.jobs // scale.enqueuers
    seconds = str(scale.job_seconds)
    rng = random.Random(stage.seed)
    with cluster(stage, ledger, 1) as running:
        enqueuers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.enqueuer", str(each), seconds, str(out)],
                env={**stage.env, LEDGER_ENV: str(ledger)},
                cwd=Path(__file__).resolve().parents[2],
            )
            for out in outputs
        ]

        def all_done() -> bool:
            return all(p.poll() is not None for p in enqueuers) and not _unfinished()

        try:
            log = drain(
                running,
                report,
                scale.every,
                _kill_a_child(running, rng),
                scale.deadline,
                until=all_done,
            )
        finally:
            for process in enqueuers:
                if process.poll() is None:
                    process.kill()
                process.wait()
    codes = [p.returncode for p in enqueuers]
    lines = [line for out in outputs if out.exists() for line in out.read_text().split()]
    refused = [line for line in lines if line.startswith("error")]
    ids = {line for line in lines if not line.startswith("error")}
    if any(codes) or refused:
        report.problem(f"enqueuers exited {codes}, {len(refused)} enqueue(s) refused")
    extra = Job.objects.exclude(pk__in=ids).count() if ids else Job.objects.count()
    if extra:
        report.problem(f"{extra} job row(s) that no enqueue returned")
    report.notes["enqueue processes"] = scale.enqueuers
    _faults_struck(report, log)
    return judge(report, ledger, log, ids)


SCENARIOS: dict[str, Callable[[Stage, Scale], Report]] = {
    "worker_kills": worker_kills,
    "worker_kills_once": worker_kills_once,
    "node_kills": node_kills,
    "frozen_node": frozen_node,
    "database_restart": database_restart,
    "session_kills": session_kills,
    "limited_under_kills": limited_under_kills,
    "recurring_two_nodes": recurring_two_nodes,
    "enqueue_burst": enqueue_burst,
}


def not_applicable(name: str) -> str | None:
    """Why scenario ``name`` cannot run against this database, or None."""
    if name == "database_restart":
        return cannot_restart()
    if name == "session_kills" and connection.vendor == "sqlite":
        return "SQLite has no server sessions"
    return None
