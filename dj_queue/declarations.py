"""Reading dj_queue's per-task options, wherever a task declares them.

An option is a ``@task(...)`` keyword argument on Django 6.1 (a field of
``dj_queue.task.DjQueueTask``) or an attribute of the wrapped function, set
before or after ``@task``. Attributes may be set late, so a declaration is read
again at each use; only parsing it is cached, per declaration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.tasks import Task


def declared_options(task: Task, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that ``task`` sets: keyword arguments first,
    then attributes of the wrapped function."""
    declared = {}
    for name in names:
        value = getattr(task, name, None)
        if value is None:
            value = getattr(task.func, name, None)
        if value is not None:
            declared[name] = value
    return declared


class ParsedDeclarations[T]:
    """A cache of parsed declarations, keyed by the function and what it declares."""

    def __init__(self, names: Iterable[str], parse: Callable[[Task, dict[str, Any]], T]) -> None:
        self.names = tuple(names)
        self._parse = parse
        self._parsed: dict[tuple[Any, ...], T] = {}
        self._lock = threading.Lock()

    def get(self, task: Task, default: T) -> T:
        """The parsed declaration of ``task``, ``default`` when it declares
        nothing; whatever ``parse`` raises for a bad one."""
        declared = declared_options(task, self.names)
        if not declared:
            return default
        key = (task.func, task.takes_context, tuple(sorted(declared.items(), key=str)))
        try:
            return self._parsed[key]
        except (KeyError, TypeError):  # TypeError: an unhashable (so invalid) value
            pass
        parsed = self._parse(task, declared)
        try:
            with self._lock:
                self._parsed[key] = parsed
        except TypeError:
            pass
        return parsed
