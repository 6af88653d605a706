"""One reading of a backend's figures, reused for ``metrics.cache_seconds``.

Several Prometheus servers (and a person on ``stats.json``) may ask at the same
moment; each reading costs a handful of queries on the queue database, so they
share one. The reading lives in this process's memory: every web process
reads for itself, which keeps the cache free of any shared store to configure.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .figures import Snapshot
from .snapshot import dj_queue_backend, snapshot

if TYPE_CHECKING:
    from ..config import MetricsConfig

# Backend alias → (monotonic time it expires, the reading).
_readings: dict[str, tuple[float, Snapshot]] = {}
# Backend alias → the lock held while that backend is read, so that scrapers
# arriving together wait for one reading instead of each making their own.
_reading_locks: dict[str, threading.Lock] = {}
# Guards both dicts; never held while the database is read.
_lock = threading.Lock()


def metrics_config(backend_alias: str) -> MetricsConfig:
    """``backend_alias``'s metrics options (ValueError if it is no dj_queue backend)."""
    return dj_queue_backend(backend_alias).config.metrics


def cached_snapshot(backend_alias: str) -> Snapshot:
    """``backend_alias``'s metrics figures (``snapshot(dashboard=False)``), read
    at most once per ``cache_seconds``; 0 reads them on every call."""
    seconds = metrics_config(backend_alias).cache_seconds
    if seconds <= 0:
        return snapshot(backend_alias, dashboard=False)
    with _reading_lock(backend_alias):
        # A caller that waited on the lock finds the reading just made.
        kept = _fresh(backend_alias)
        if kept is not None:
            return kept
        taken = snapshot(backend_alias, dashboard=False)
        with _lock:
            _readings[backend_alias] = (time.monotonic() + seconds, taken)
        return taken


def forget(backend_alias: str | None = None) -> None:
    """Drop the kept reading of ``backend_alias`` (of every backend if None),
    so that the next call reads again: for tests and changed settings."""
    with _lock:
        if backend_alias is None:
            _readings.clear()
        else:
            _readings.pop(backend_alias, None)


def _reading_lock(backend_alias: str) -> threading.Lock:
    with _lock:
        return _reading_locks.setdefault(backend_alias, threading.Lock())


def _fresh(backend_alias: str) -> Snapshot | None:
    with _lock:
        kept = _readings.get(backend_alias)
    if kept is None or kept[0] <= time.monotonic():
        return None
    return kept[1]
