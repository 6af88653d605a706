"""What really ran, written by the tasks themselves, outside the database.

Each process appends JSON lines to its own file in the directory named by
DJ_QUEUE_CHAOS_LEDGER, with one ``write`` of a short line on an O_APPEND file:
a SIGKILL cannot leave half a line behind, and a database restart cannot lose
what the ledger already says.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.tasks import TaskContext

ENV = "DJ_QUEUE_CHAOS_LEDGER"

_files: dict[int, int] = {}


def record(context: TaskContext, event: str, **extra: str) -> None:
    """Append ``event`` ("start" or "end") of this attempt to the ledger."""
    directory = os.environ.get(ENV)
    if not directory:
        return
    pid = os.getpid()
    fd = _files.get(pid)
    if fd is None:
        # Per pid: a forked child must not share its parent's descriptor offset logic.
        fd = os.open(Path(directory) / f"{pid}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        _files[pid] = fd
    result = context.task_result
    line = {
        "e": event,
        "job": result.id,
        "a": context.attempt,
        "w": result.worker_ids[-1] if result.worker_ids else "",
        "pid": pid,
        "t": time.time(),
        **extra,
    }
    os.write(fd, (json.dumps(line) + "\n").encode())


@dataclass(frozen=True)
class Entry:
    event: str
    job: str
    attempt: int
    worker: str
    pid: int
    at: float
    key: str | None


@dataclass(frozen=True)
class Run:
    """One attempt as the ledger saw it: ``ended`` is None when its process died."""

    job: str
    attempt: int
    worker: str
    pid: int
    started: float
    ended: float | None
    key: str | None


def read(directory: Path) -> list[Entry]:
    entries = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            entries.append(
                Entry(
                    raw["e"], raw["job"], raw["a"], raw["w"], raw["pid"], raw["t"], raw.get("key")
                )
            )
    entries.sort(key=lambda entry: entry.at)
    return entries


def runs(entries: list[Entry]) -> list[Run]:
    """Pair each start with the end of the same attempt in the same process."""
    ends = {(e.job, e.attempt, e.pid): e.at for e in entries if e.event == "end"}
    return [
        Run(e.job, e.attempt, e.worker, e.pid, e.at, ends.get((e.job, e.attempt, e.pid)), e.key)
        for e in entries
        if e.event == "start"
    ]


def runs_by_job(all_runs: list[Run]) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = defaultdict(list)
    for run in all_runs:
        grouped[run.job].append(run)
    return grouped
