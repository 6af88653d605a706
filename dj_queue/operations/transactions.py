"""Transactions for queue operations, retried on transient conflicts."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from django.db import DatabaseError, connections, transaction

from ..db import get_driver

logger = logging.getLogger("dj_queue")

MAX_ATTEMPTS = 6


def in_transaction[T](alias: str, operation: Callable[[], T]) -> T:
    """Run ``operation`` in one transaction on ``alias``.

    Deadlocks, serialization failures and SQLite's "database is locked" are
    retried with a short jittered backoff, but only when this is the outermost
    transaction: inside a caller's ``atomic()`` block the whole block would have
    to be retried, so the error goes to the caller unchanged.
    """

    def atomically() -> T:
        with transaction.atomic(using=alias):
            return operation()

    return _retried(alias, atomically)


def in_one_statement[T](alias: str, statement: Callable[[], T]) -> T:
    """Run ``statement``, which issues exactly one SQL statement, with the same
    retries. Outside a transaction, autocommit makes that statement a transaction
    of its own, without the round trips of BEGIN and COMMIT."""
    return _retried(alias, statement)


def _retried[T](alias: str, operation: Callable[[], T]) -> T:
    if connections[alias].in_atomic_block:
        with transaction.atomic(using=alias):
            return operation()
    driver = get_driver(alias)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            # Not inside a caller's transaction (above): a caller holding the
            # database's write lock while waiting for this one would deadlock.
            with driver.serialized():
                return operation()
        except DatabaseError as exc:
            if attempt == MAX_ATTEMPTS or not driver.is_transient(exc):
                raise
            delay = min(0.5, 0.01 * 2**attempt) * (0.5 + random.random())
            logger.debug("transient conflict (%s), retrying in %.3fs", exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
