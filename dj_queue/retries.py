"""Automatic retries and per-attempt timeouts declared on tasks.

A task opts in with ``max_attempts`` (and optionally ``retry_delay``,
``retry_max_delay``, ``retry_jitter``, ``retry_backoff``, ``retry_on``) and
``timeout``, as attributes of the wrapped function or, on Django 6.1, as
``@task(...)`` keyword arguments; a backend's ``OPTIONS["retries"]`` and
``OPTIONS["timeout"]`` give the defaults. Each enqueued job carries the merged
policy in its row (``RetryPolicy.stored()``), so a job recovered from a dead
process is retried by the rules it was enqueued with, without importing code.

Nothing here touches models or settings: it runs when a task module is imported.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from django.tasks import Task
from django.tasks.exceptions import InvalidTask
from django.utils.module_loading import import_string

from .declarations import ParsedDeclarations

TASK_OPTION_NAMES = (
    "max_attempts",
    "retry_delay",
    "retry_max_delay",
    "retry_jitter",
    "retry_backoff",
    "retry_on",
    "timeout",
)

DEFAULT_MAX_ATTEMPTS = 1
DEFAULT_DELAY = 1.0
DEFAULT_MAX_DELAY = 3600.0
EVERY_EXCEPTION = ("builtins.Exception",)

Backoff = Callable[[int, BaseException | None], float]


def class_path(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def lineage(kind: type) -> tuple[str, ...]:
    """The class paths of ``kind`` and its bases: what ``retry_on`` is matched against."""
    return tuple(class_path(base) for base in kind.__mro__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a job may be attempted, how long to wait between attempts, and
    how long one attempt may run. ``max_attempts == 1`` means no retry."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    delay: float = DEFAULT_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: bool = True
    backoff: str | None = None  # dotted path of a function (attempt, exception) -> seconds
    retry_on: tuple[str, ...] = EVERY_EXCEPTION
    timeout: float | None = None

    @property
    def retries(self) -> bool:
        return self.max_attempts > 1

    def stored(self) -> dict[str, Any] | None:
        """The JSON the job row keeps, None when the job is never retried."""
        if not self.retries:
            return None
        return {
            "max_attempts": self.max_attempts,
            "delay": self.delay,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
            "backoff": self.backoff,
            "retry_on": list(self.retry_on),
        }

    @classmethod
    def of_row(cls, stored: Any, timeout: Any = None) -> RetryPolicy:
        """The policy a job row carries; a row without one (or a malformed one,
        which only a hand-edited row could hold) is never retried."""
        base = cls(timeout=float(timeout) if isinstance(timeout, int | float) else None)
        if not isinstance(stored, Mapping):
            return base
        try:
            delay, max_delay = float(stored["delay"]), float(stored["max_delay"])
            if not (math.isfinite(delay) and math.isfinite(max_delay)):
                return base
            return replace(
                base,
                max_attempts=int(stored["max_attempts"]),
                delay=delay,
                max_delay=max_delay,
                jitter=bool(stored["jitter"]),
                backoff=stored.get("backoff") or None,
                retry_on=tuple(str(path) for path in stored["retry_on"]),
            )
        except (KeyError, TypeError, ValueError):
            return base

    def should_retry(self, error_lineage: tuple[str, ...], attempts: int) -> bool:
        """Whether a job that failed its ``attempts``-th attempt with an error of
        this lineage gets another one."""
        return attempts < self.max_attempts and any(path in self.retry_on for path in error_lineage)

    def delay_after(
        self,
        attempt: int,
        exception: BaseException | None = None,
        backoff: Backoff | None = None,
    ) -> float:
        """Seconds to wait after the ``attempt``-th attempt failed: ``backoff``
        when given (the task's own function), else ``delay`` doubling per
        attempt; capped at ``max_delay``. With jitter, a random point in the
        upper half, so retries of many jobs that failed together spread out."""
        seconds: float | None = None
        if backoff is not None:
            try:
                value = backoff(attempt, exception)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    seconds = float(value)
            except Exception:
                seconds = None
            if seconds is not None and not (_finite(seconds) and seconds >= 0):
                seconds = None
            if seconds is not None:
                return min(seconds, self.max_delay)
        exponent = min(max(attempt - 1, 0), 60)
        seconds = min(self.delay * 2.0**exponent, self.max_delay)
        if self.jitter:
            seconds = random.uniform(seconds / 2, seconds)
        return seconds


# -- declarations -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRetryOptions:
    """A task's validated declaration: only what it sets, over the backend's defaults."""

    values: tuple[tuple[str, Any], ...]
    backoff_function: Backoff | None

    def over(self, defaults: RetryPolicy) -> RetryPolicy:
        return replace(defaults, **dict(self.values))


NO_OPTIONS = TaskRetryOptions((), None)


def options_for(task: Task) -> TaskRetryOptions:
    """The task's validated retry options; InvalidTask naming the option if bad."""
    return _declarations.get(task, NO_OPTIONS)


def policy_for(task: Task, defaults: RetryPolicy) -> RetryPolicy:
    return options_for(task).over(defaults)


def _parse(task: Task, declared: Mapping[str, Any]) -> TaskRetryOptions:
    path = task.module_path

    def invalid(option: str, problem: str) -> InvalidTask:
        return InvalidTask(f"Task {path}: {option} {problem}")

    values: dict[str, Any] = {}
    backoff_function: Backoff | None = None
    for option, value in declared.items():
        problem = partial(invalid, option)
        if option == "max_attempts":
            values["max_attempts"] = whole_attempts(value, problem)
        elif option in ("retry_delay", "retry_max_delay"):
            field = "delay" if option == "retry_delay" else "max_delay"
            values[field] = seconds(value, problem, zero=True)
        elif option == "timeout":
            values["timeout"] = seconds(value, problem, zero=False)
        elif option == "retry_jitter":
            if not isinstance(value, bool):
                raise invalid(option, f"must be True or False, got {value!r}.")
            values["jitter"] = value
        elif option == "retry_backoff":
            values["backoff"], backoff_function = backoff_path(value, problem)
        elif option == "retry_on":
            values["retry_on"] = exception_paths(value, problem)
    return TaskRetryOptions(tuple(sorted(values.items())), backoff_function)


# -- value checks shared with the backend's OPTIONS parsing --------------------

Problem = Callable[[str], Exception]


def whole_attempts(value: Any, problem: Problem) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise problem(f"must be a whole number of at least 1, got {value!r}.")
    return value


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def seconds(value: Any, problem: Problem, *, zero: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not _finite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        bound = "0 or more" if zero else "above 0"
        raise problem(f"must be a number of seconds {bound}, got {value!r}.")
    return float(value)


def backoff_path(value: Any, problem: Problem) -> tuple[str, Backoff]:
    """A backoff function given as a dotted path (or the function itself)."""
    if callable(value) and not isinstance(value, str):
        function = value
        path = f"{function.__module__}.{function.__qualname__}"
    elif isinstance(value, str) and value.strip():
        path = value
        try:
            function = import_string(value)
        except ImportError as exc:
            raise problem(f"{value!r} cannot be imported: {exc}.") from None
    else:
        raise problem(f"must be a dotted path to a function (attempt, exception), got {value!r}.")
    if not callable(function):
        raise problem(f"{path!r} is not callable.")
    return path, function


def exception_paths(value: Any, problem: Problem) -> tuple[str, ...]:
    """``retry_on`` as class paths: exception classes, dotted paths, or a list of them."""
    items = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    if not items:
        raise problem("must name at least one exception class.")
    paths = []
    for item in items:
        kind = item
        if isinstance(item, str):
            try:
                kind = import_string(item)
            except ImportError as exc:
                raise problem(f"{item!r} cannot be imported: {exc}.") from None
        if not isinstance(kind, type) or not issubclass(kind, BaseException):
            raise problem(f"must name exception classes, got {item!r}.")
        paths.append(class_path(kind))
    return tuple(dict.fromkeys(paths))


_declarations: ParsedDeclarations[TaskRetryOptions] = ParsedDeclarations(TASK_OPTION_NAMES, _parse)
