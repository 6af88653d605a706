"""Unique jobs declared on tasks.

A task opts in with ``unique_key`` — a ``str.format`` template over the call's
arguments, or ``True`` for "this task with these arguments" — and optionally
``unique_for`` (seconds), as attributes of the wrapped function or, on Django
6.1, as ``@task(...)`` keyword arguments. An enqueue whose key is held returns
the holder's result and writes nothing. The key is held by a job while it waits
or runs (retries included) and, with ``unique_for``, until that many seconds
after the holder was enqueued, even once it has finished successfully. A unique
index on the job's ``unique_key`` column enforces it; ending a job clears the
column in the same transaction.

Nothing here touches models or settings: it runs when a task module is imported.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from django.tasks import Task
from django.tasks.exceptions import InvalidTask

from .declarations import ParsedDeclarations
from .keys import KeyTemplate
from .models.constraints import UNIQUE_KEY_MAX_LENGTH

OPTION_NAMES = ("unique_key", "unique_for")


@dataclass(frozen=True, slots=True)
class UniquePolicy:
    task_path: str
    template: KeyTemplate | None  # None: a digest of the task path and the call
    unique_for: float | None

    def key_for(self, args: Any, kwargs: Any) -> str:
        if self.template is not None:
            return self.template.render(args, kwargs)
        call = json.dumps(
            [self.task_path, args, kwargs], sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return f"call:{hashlib.sha256(call.encode()).hexdigest()}"


def policy_for(task: Task) -> UniquePolicy | None:
    """The task's validated unique policy, or None; InvalidTask naming the option."""
    return _declarations.get(task, None)


def _parse(task: Task, declared: dict[str, Any]) -> UniquePolicy | None:
    path = task.module_path

    def invalid(option: str, problem: str) -> InvalidTask:
        return InvalidTask(f"Task {path}: {option} {problem}")

    key = declared.get("unique_key")
    unique_for = declared.get("unique_for")
    if key is None or key is False:
        if unique_for is not None:
            raise invalid(
                "unique_for",
                "only takes effect with a unique_key (True, or a template such as "
                "'report:{report_id}').",
            )
        return None
    template = None
    if key is not True:
        template = KeyTemplate.checked(
            path, "unique_key", key, task.func, task.takes_context, UNIQUE_KEY_MAX_LENGTH
        )
    if unique_for is not None and (
        isinstance(unique_for, bool)
        or not isinstance(unique_for, int | float)
        or not math.isfinite(unique_for)
        or unique_for <= 0
    ):
        raise invalid("unique_for", f"must be a number of seconds above 0, got {unique_for!r}.")
    return UniquePolicy(path, template, None if unique_for is None else float(unique_for))


_declarations: ParsedDeclarations[UniquePolicy | None] = ParsedDeclarations(OPTION_NAMES, _parse)
