"""Reporting errors raised in runtime threads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

from django.utils.module_loading import import_string

logger = logging.getLogger("dj_queue")


@cache
def _handler(path: str) -> Callable[[BaseException], object]:
    handler: Callable[[BaseException], object] = import_string(path)
    return handler


def report_thread_error(exc: BaseException, on_thread_error: str | None, context: str) -> None:
    """Log ``exc`` and hand it to the configured ``on_thread_error`` callable."""
    logger.error("error in %s: %s", context, exc, exc_info=exc)
    if on_thread_error is None:
        return
    try:
        _handler(on_thread_error)(exc)
    except Exception:
        logger.exception("on_thread_error handler %r raised", on_thread_error)
