"""Transactions for queue operations, retried on transient conflicts."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connections, transaction

from ..db import get_driver

logger = logging.getLogger("dj_queue")

T = TypeVar("T")

MAX_ATTEMPTS = 6


def in_transaction[T](alias: str, operation: Callable[[], T]) -> T:
    """Run ``operation`` in one transaction on ``alias``.

    Deadlocks, serialization failures and SQLite's "database is locked" are
    retried with a short jittered backoff, but only when this is the outermost
    transaction: inside a caller's ``atomic()`` block the whole block would have
    to be retried, so the error goes to the caller unchanged.
    """
    connection = connections[alias]
    if connection.in_atomic_block:
        with transaction.atomic(using=alias):
            return operation()
    driver = get_driver(alias)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with transaction.atomic(using=alias):
                return operation()
        except DatabaseError as exc:
            if attempt == MAX_ATTEMPTS or not driver.is_transient(exc):
                raise
            delay = min(0.5, 0.01 * 2**attempt) * (0.5 + random.random())
            logger.debug("transient conflict (%s), retrying in %.3fs", exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
