"""Concurrency limits: taking, releasing and handing on the slots of a key.

A job of a limited task holds one slot of its key from the moment it is ready
until it finishes, fails or is discarded; blocked jobs wait for a slot. Every
function here runs inside the caller's transaction except the public entry
points at the bottom, which are transactions of their own. Each locks the
semaphore rows it needs first, in one order (``_lock_order``), before reading
or writing blocked rows: two transitions of one key queue up instead of racing,
and transitions of several keys cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from django.db import connections
from django.utils import timezone

from ..concurrency import DEFAULT_DURATION, DEFAULT_LIMIT, ConcurrencyLimit, OnConflict
from ..db import Driver, ReadyRow, get_driver
from ..db.semaphores import BlockedRow
from ..exceptions import JobStateError
from ..ids import parse_job_id, parse_job_ids
from ..models import Job
from .routing import queue_database_alias
from .transactions import in_transaction


def _lock_order(key: str) -> tuple[str, str]:
    # MySQL compares keys under a case-insensitive collation: sort so that keys
    # it takes for one row are locked at the same point in every transaction.
    return key.casefold(), key


@dataclass(slots=True)
class _Slots:
    """One key's semaphore while a transaction holds its lock."""

    key: str
    row_id: int
    free: int
    taken: bool = False  # a slot was taken in this transaction
    duration: float = DEFAULT_DURATION
    changed: bool = False


def _lock(cursor: Any, driver: Driver, key: str, limit: int, now: datetime) -> _Slots:
    """Lock ``key``'s semaphore row, creating it (all ``limit`` slots free) when
    there is none, so that a concurrent transaction of the key waits for ours."""
    locked = driver.lock_semaphore(cursor, key, now)
    if locked is None:
        driver.create_semaphore(cursor, key, limit, now, now)
        locked = driver.lock_semaphore(cursor, key, now)
        assert locked is not None, f"semaphore {key!r} vanished while locked"
    return _Slots(key, locked.row_id, locked.value)


def _save(cursor: Any, driver: Driver, slots: _Slots, now: datetime) -> None:
    """Write the key's free slots back. Taking a slot pushes the expiry to
    ``now + duration``: the row expires a duration after its latest taker."""
    if not slots.changed:
        return
    if slots.taken:
        expires_at = now + timedelta(seconds=slots.duration)
        driver.set_semaphore(cursor, slots.row_id, slots.free, expires_at, now)
    else:
        driver.set_semaphore_value(cursor, slots.row_id, slots.free, now)


def acquire_slots(
    cursor: Any, driver: Driver, limits: Sequence[tuple[uuid.UUID, ConcurrencyLimit]], now: datetime
) -> dict[uuid.UUID, bool]:
    """Take a slot for each job, in the order given: True where it got one.

    Used by enqueue, promotion and retry, inside their transaction."""
    keys = {limit.key: limit for _, limit in limits}
    held = {
        key: _lock(cursor, driver, key, keys[key].limit, now)
        for key in sorted(keys, key=_lock_order)
    }
    granted = {}
    for job_id, limit in limits:
        slots = held[limit.key]
        if slots.free > 0:
            slots.free -= 1
            # The longest duration among this transaction's takers wins.
            slots.duration = max(slots.duration, limit.duration) if slots.taken else limit.duration
            slots.taken = slots.changed = True
            granted[job_id] = True
        else:
            granted[job_id] = False
    for slots in held.values():
        _save(cursor, driver, slots, now)
    return granted


def release_slots(
    cursor: Any, driver: Driver, limits: Iterable[ConcurrencyLimit], now: datetime
) -> int:
    """Give back one slot per limit (a holder finished, failed, was discarded or
    recovered) and move blocked jobs of those keys to ready while slots are
    free, best priority first, then oldest. Returns how many were moved."""
    released: dict[str, list[ConcurrencyLimit]] = {}
    for limit in limits:
        released.setdefault(limit.key, []).append(limit)
    moved = 0
    for key in sorted(released, key=_lock_order):
        rules = released[key]
        most = max(rule.limit for rule in rules)
        duration = max(rule.duration for rule in rules)
        locked = driver.lock_semaphore(cursor, key, now)
        if locked is None:
            # Maintenance deleted the row as expired: every slot counts as free
            # already and there is nothing to give back. Should jobs be blocked
            # on the key anyway, a new row (all slots free) hands them on.
            if not driver.blocked_limit(cursor, key):
                continue
            slots = _lock(cursor, driver, key, most, now)
        else:
            # Never more free slots than the limit: the row may have expired
            # and started afresh while this holder still ran.
            free = min(locked.value + len(rules), most)
            slots = _Slots(key, locked.row_id, free)
        slots.changed = True
        slots.duration = duration
        moved += _hand_on(cursor, driver, slots, now)
        _save(cursor, driver, slots, now)
    return moved


def _hand_on(cursor: Any, driver: Driver, slots: _Slots, now: datetime) -> int:
    """Move blocked jobs of the locked key to ready, one per free slot."""
    if slots.free <= 0:
        return 0
    rows = driver.take_blocked(cursor, slots.key, slots.free)
    if rows:
        driver.insert_ready(cursor, rows, now)
        slots.free -= len(rows)
        slots.taken = slots.changed = True
    return len(rows)


def limits_of_jobs(
    cursor: Any, driver: Driver, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ConcurrencyLimit]:
    """The stored rule of each limited job among ``job_ids``."""
    rules = driver.job_limits(cursor, job_ids)
    return {
        job_id: ConcurrencyLimit(
            key,
            limit or DEFAULT_LIMIT,
            duration or DEFAULT_DURATION,
            cast(OnConflict, on_conflict or "block"),
        )
        for job_id, (key, limit, duration, on_conflict) in rules.items()
    }


def place_limited(
    alias: str,
    cursor: Any,
    driver: Driver,
    rows: Sequence[ReadyRow],
    limits: dict[uuid.UUID, ConcurrencyLimit],
    now: datetime,
    *,
    discard: bool = True,
    preserve_discarded: bool = True,
) -> list[ReadyRow]:
    """Of jobs becoming ready (``rows``), block the limited ones that get no
    slot, or discard them where their rule says so and ``discard`` allows;
    returns the rows that may go to ready. For promotion and retry."""
    wanted = [(row.job_id, limits[row.job_id]) for row in rows if row.job_id in limits]
    if not wanted:
        return list(rows)
    granted = acquire_slots(cursor, driver, wanted, now)
    ready, blocked, discarded = [], [], []
    for row in rows:
        limit = limits.get(row.job_id)
        if limit is None or granted[row.job_id]:
            ready.append(row)
        elif limit.discards and discard:
            discarded.append(row.job_id)
        else:
            expires_at = now + timedelta(seconds=limit.duration)
            blocked.append(
                BlockedRow(row.job_id, row.queue_name, row.priority, limit.key, expires_at)
            )
    if blocked:
        driver.insert_blocked(cursor, blocked, now)
    if discarded:
        jobs = Job.objects.using(alias).filter(pk__in=discarded)
        if preserve_discarded:
            jobs.update(finished_at=now)
        else:
            jobs._raw_delete(alias)
    return ready


def release_limited_jobs(alias: str, job_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Give back the slots held by the limited jobs among ``job_ids``, which
    are leaving the ready or claimed state in the caller's transaction."""
    if not job_ids:
        return
    driver = get_driver(alias)
    with connections[alias].cursor() as cursor:
        limits = limits_of_jobs(cursor, driver, job_ids)
        if limits:
            release_slots(cursor, driver, limits.values(), now)


# -- entry points: each a transaction of its own --------------------------------


def give_back_slot(alias: str, limit: ConcurrencyLimit) -> int:
    """Give back a slot its job no longer claims: that of an attempt stopped at
    its timeout, kept until the attempt's code has actually stopped so the key
    never runs more than its limit. Returns how many blocked jobs moved on."""
    now = timezone.now()

    def write() -> int:
        with connections[alias].cursor() as cursor:
            return release_slots(cursor, get_driver(alias), [limit], now)

    return in_transaction(alias, write)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    expired_semaphores: int  # rows found expired
    released_jobs: int  # blocked jobs moved to ready


def run_concurrency_maintenance(alias: str, *, batch_size: int = 500) -> MaintenanceReport:
    """Expire semaphores whose ``concurrency_duration`` passed and re-check
    blocked jobs whose wait expired, a key per transaction, at most
    ``batch_size`` keys of each kind per call.

    An expired semaphore is presumed to have lost its holders (they vanished
    without releasing): its key starts again with every slot free, handed on to
    its blocked jobs at once, and the row is deleted if nobody waits."""
    driver = get_driver(alias)

    def keys(select: Any) -> list[str]:
        with connections[alias].cursor() as cursor:
            return list(select(cursor, timezone.now(), batch_size))

    def expire(key: str) -> tuple[int, int]:
        now = timezone.now()
        with connections[alias].cursor() as cursor:
            locked = driver.lock_semaphore(cursor, key, now)
            if locked is None or not locked.expired:
                return 0, 0
            rule = driver.blocked_limit(cursor, key)
            if rule is None:
                driver.delete_semaphore(cursor, locked.row_id)
                return 1, 0
            limit, duration = rule
            slots = _Slots(key, locked.row_id, limit, duration=duration or DEFAULT_DURATION)
            slots.changed = True
            moved = _hand_on(cursor, driver, slots, now)
            _save(cursor, driver, slots, now)
            return 1, moved

    def recheck(key: str) -> int:
        now = timezone.now()
        with connections[alias].cursor() as cursor:
            rule = driver.blocked_limit(cursor, key)
            if rule is None:
                return 0
            limit, duration = rule
            slots = _lock(cursor, driver, key, limit, now)
            slots.duration = duration or DEFAULT_DURATION
            moved = _hand_on(cursor, driver, slots, now)
            _save(cursor, driver, slots, now)
            # Still waiting: look again after another duration, not every run.
            driver.extend_blocked(cursor, key, now, now + timedelta(seconds=slots.duration))
            return moved

    expired = released = 0
    for key in keys(driver.expired_semaphore_keys):
        found, moved = in_transaction(alias, partial(expire, key))
        expired += found
        released += moved
    for key in keys(driver.expired_blocked_keys):
        released += in_transaction(alias, partial(recheck, key))
    return MaintenanceReport(expired_semaphores=expired, released_jobs=released)


def release_blocked_jobs(
    job_ids: Iterable[uuid.UUID | str], *, using: str | None = None, batch_size: int = 500
) -> int:
    """Move blocked jobs to ready now, whatever their keys' free slots: an
    operator's override. A released job leaves its key (its rule is cleared),
    so it neither takes nor later gives back a slot, and the count of the jobs
    that do hold one stays right. Ids of jobs that are not blocked are skipped.
    Returns how many were released."""
    alias = using or queue_database_alias()
    ids = parse_job_ids(job_ids)
    driver = get_driver(alias)

    def release(batch: list[uuid.UUID]) -> int:
        now = timezone.now()
        with connections[alias].cursor() as cursor:
            keys = {limit.key for limit in limits_of_jobs(cursor, driver, batch).values()}
            # Lock order: each key's semaphore before its blocked rows.
            for key in sorted(keys, key=_lock_order):
                driver.lock_semaphore(cursor, key, now)
            rows = driver.take_blocked_jobs(cursor, batch)
            if not rows:
                return 0
            driver.insert_ready(cursor, rows, now)
        Job.objects.using(alias).filter(pk__in=[row.job_id for row in rows]).update(
            concurrency_key=None,
            concurrency_limit=None,
            concurrency_duration=None,
            concurrency_on_conflict=None,
        )
        return len(rows)

    released = 0
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        released += in_transaction(alias, partial(release, batch))
    return released


def release_blocked_job(job_id: uuid.UUID | str, *, using: str | None = None) -> None:
    """``release_blocked_jobs`` for one job; JobStateError when it is not blocked."""
    if release_blocked_jobs([job_id], using=using):
        return
    alias = using or queue_database_alias()
    exists = Job.objects.using(alias).filter(pk=str(parse_job_id(job_id))).exists()
    state = "is not blocked" if exists else "does not exist"
    raise JobStateError(f"Job {job_id} {state}; only blocked jobs can be released.")
