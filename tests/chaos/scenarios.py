"""The chaos scenarios: jobs drained by real nodes while one kind of fault strikes.

Each scenario enqueues its jobs, drains them under its fault (``stage``) and
judges the ledger against the tables (``verdict``). ``Scale`` sets the sizes:
the tests run them small, bench/chaos.py at full size.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from django.db import connection
from django.tasks import Task

from dj_queue.models import Job

from .faults import Fault, cannot_restart, kill_sessions, restart_database
from .ledger import ENV as LEDGER_ENV
from .ledger import read, runs
from .nodes import wait_released
from .stage import (
    NODE_OPTIONS,
    Scale,
    Stage,
    cluster,
    drain,
    enqueue,
    faults_struck,
    kill_a_child,
    unfinished,
    wait_resumed,
)
from .verdict import Report, double_fires, judge

__all__ = ["SCENARIOS", "Scale", "Stage", "not_applicable"]


def _worker_kills(
    stage: Stage, scale: Scale, task: Task, title: str, *, retries_allowed: bool
) -> Report:
    report = Report(title, stage.database)
    ledger = stage.ledger(task.name)
    ids = enqueue(task, [{"seconds": scale.job_seconds}] * scale.jobs)
    rng = random.Random(stage.seed)
    with cluster(stage, ledger, 1) as running:
        log = drain(running, report, scale.every, kill_a_child(running, rng), scale.deadline)
    faults_struck(report, log)
    return judge(report, ledger, log, ids, retries_allowed=retries_allowed)


def worker_kills(stage: Stage, scale: Scale) -> Report:
    """Worker children SIGKILLed while jobs that allow retries drain: each job
    ends SUCCESSFUL; a job runs twice only after a death interrupted it."""
    from tests.taskapp.chaos import chaos_step

    title = "worker SIGKILL, retries allowed"
    return _worker_kills(stage, scale, chaos_step, title, retries_allowed=True)


def worker_kills_once(stage: Stage, scale: Scale) -> Report:
    """The same with ``max_attempts = 1``: nothing runs twice, and every job a
    death interrupted ends FAILED (ProcessExitError), none is lost."""
    from tests.taskapp.chaos import chaos_once

    title = "worker SIGKILL, max_attempts 1"
    return _worker_kills(stage, scale, chaos_once, title, retries_allowed=False)


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
    faults_struck(report, log)
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
    faults_struck(report, log)
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
    jobs = Job.objects.filter(pk__in={run.job for run in late})
    final = {str(pk): ids for pk, ids in jobs.values_list("pk", "worker_ids")}
    recorded = sum(
        1
        for run in late
        if (ids := final.get(run.job)) and len(ids) == run.attempt and ids[-1] == run.worker
    )
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
    faults_struck(report, log)
    judge(report, ledger, log, ids)
    if restarts:
        report.notes["outage seconds"] = round(max((f.back_at or f.at) - f.at for f in restarts), 2)
    return report


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
    faults_struck(report, log)
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
        log = drain(running, report, scale.every, kill_a_child(running, rng), scale.deadline)
    faults_struck(report, log)
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
            kill_a_child(running, rng, "scheduler"),
            scale.recurring_seconds + 30,
            until=lambda: time.monotonic() - started >= scale.recurring_seconds,
        )
        # The schedulers stopped with the nodes, perhaps right after firing:
        # a node without one runs what they left.
        drainer = running.start("drainer", ("--skip-recurring",))
        deadline = time.monotonic() + scale.deadline
        while unfinished() and time.monotonic() < deadline:
            time.sleep(0.1)
        drainer.stop()
    faults_struck(report, log)
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
            return all(p.poll() is not None for p in enqueuers) and not unfinished()

        try:
            log = drain(
                running,
                report,
                scale.every,
                kill_a_child(running, rng),
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
    faults_struck(report, log)
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
