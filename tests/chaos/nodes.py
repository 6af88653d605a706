"""Runtime nodes: ``manage.py dj_queue`` process trees the faults are aimed at."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connections

from dj_queue.models import Process
from tests.conftest import Runtime


def process_group(pgid: int) -> list[int]:
    """Pids of the live processes of a process group (a node and its children)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after the command name, which may hold spaces: state ppid pgrp ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def poll_until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Ask ``condition`` every 20 ms until it holds; when it did (``time.time()``),
    or None after ``timeout``. A database error counts as "not yet": the fault
    may have taken the server away."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                if condition():
                    return time.time()
            except Exception:
                connections.close_all()
            time.sleep(0.02)
        return None
    finally:
        connections.close_all()


def wait_released(process_ids: list[int], timeout: float = 60.0) -> float | None:
    """Wait until the rows of ``process_ids`` are gone, which happens only after
    their claims were settled (claims protect their process row); when, or None."""
    return poll_until(lambda: not Process.objects.filter(pk__in=process_ids).exists(), timeout)


class Node:
    """One supervisor in fork mode with its children, in its own process group."""

    def __init__(self, name: str, env: dict[str, str], options: dict, args: tuple[str, ...]):
        self.name = name
        merged = json.loads(env.get("DJ_QUEUE_TEST_OPTIONS", "{}")) | options
        self.runtime = Runtime(
            ["--mode", "fork", *args], {**env, "DJ_QUEUE_TEST_OPTIONS": json.dumps(merged)}
        )
        self.frozen = False

    @property
    def pid(self) -> int:
        return self.runtime.process.pid

    def wait_started(self, kind: str = "worker", timeout: float = 60.0) -> None:
        self.runtime.wait_for_log(f"dj_queue: {kind} started", timeout=timeout)

    def running(self) -> bool:
        return self.runtime.process.poll() is None

    def children(self, kind: str) -> list[Process]:
        """This node's registered children of ``kind``, as the database lists them."""
        try:
            return list(
                Process.objects.filter(kind=kind, supervisor__pid=self.pid).exclude(pid=self.pid)
            )
        finally:
            # The fault thread asks between faults: no connection kept across them.
            connections.close_all()

    def kill_child(self, kind: str, rng: random.Random) -> Process | None:
        """SIGKILL one live child of ``kind``; its row, or None if none was running."""
        candidates = [p for p in self.children(kind) if alive(p.pid)]
        if not candidates:
            return None
        victim = rng.choice(candidates)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGKILL)
        return victim

    def registered(self) -> list[int]:
        """Ids of the process rows of this node (the supervisor's and its children's)."""
        try:
            return list(
                Process.objects.filter(pid__in=process_group(self.pid)).values_list("pk", flat=True)
            )
        finally:
            connections.close_all()

    def kill(self) -> list[int]:
        """SIGKILL the whole tree, as a machine dying would; the pids it had."""
        pids = process_group(self.pid)
        self.runtime.kill_tree()
        return pids

    def freeze(self) -> list[int]:
        pids = process_group(self.pid)
        os.killpg(self.pid, signal.SIGSTOP)
        self.frozen = True
        return pids

    def thaw(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)
        self.frozen = False

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        if self.frozen:
            self.thaw()
        self.runtime.stop(timeout)

    def close(self) -> None:
        if self.frozen:
            self.thaw()
        self.runtime.close()

    def log(self) -> str:
        return self.runtime.log()
