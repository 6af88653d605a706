"""``silence_polling``: keep the runtime's polling queries out of the SQL log.

Django logs every query to ``django.db.backends`` at DEBUG. A worker polling
ten times a second would drown that log, so while a runtime thread polls it
marks itself, and a filter on that logger drops what the marked thread logs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()
_lock = threading.Lock()
_installed = False


class _PollingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_state, "polling", False)


def install() -> None:
    global _installed
    with _lock:
        if not _installed:
            logging.getLogger("django.db.backends").addFilter(_PollingFilter())
            _installed = True


@contextmanager
def polling(silenced: bool) -> Iterator[None]:
    """Queries made inside are left out of the SQL log when ``silenced``."""
    if not silenced:
        yield
        return
    install()
    _state.polling = True
    try:
        yield
    finally:
        _state.polling = False
