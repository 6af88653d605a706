"""Concurrency limits declared on tasks.

A task opts in with ``concurrency_key`` (a ``str.format`` template over the call's
arguments), ``concurrency_limit``, ``concurrency_duration`` and ``on_conflict``,
either as attributes of the wrapped function or, on Django 6.1, as ``@task(...)``
keyword arguments (see ``dj_queue.task.DjQueueTask``). The declaration is read
into a ``ConcurrencyPolicy`` once per task; each enqueued call renders it into a
``ConcurrencyLimit`` that the job row carries from then on.

Nothing here touches models or settings: it runs when a task module is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

from django.tasks import Task
from django.tasks.exceptions import InvalidTask

from .declarations import ParsedDeclarations
from .keys import KeyTemplate
from .models.constraints import CONCURRENCY_KEY_MAX_LENGTH

OnConflict = Literal["block", "discard"]
ON_CONFLICT_CHOICES: tuple[OnConflict, ...] = ("block", "discard")

DEFAULT_LIMIT = 1
# As long as the default process_alive_threshold: a holder on a node that died
# is recovered (and its slot released) before its slot would expire.
DEFAULT_DURATION = 300.0

OPTION_NAMES = ("concurrency_key", "concurrency_limit", "concurrency_duration", "on_conflict")


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """The rule one job obeys: at most ``limit`` jobs holding ``key`` at once."""

    key: str
    limit: int
    duration: float  # seconds a slot is held before it expires
    on_conflict: OnConflict

    @property
    def discards(self) -> bool:
        return self.on_conflict == "discard"

    @classmethod
    def of_job(cls, job: Any) -> ConcurrencyLimit | None:
        """The rule stored on a job row, or None for an unlimited job."""
        if job.concurrency_key is None:
            return None
        return cls(
            key=job.concurrency_key,
            limit=job.concurrency_limit or DEFAULT_LIMIT,
            duration=job.concurrency_duration or DEFAULT_DURATION,
            on_conflict=cast(OnConflict, job.concurrency_on_conflict or "block"),
        )


@dataclass(frozen=True, slots=True)
class ConcurrencyPolicy:
    """A task's declaration, validated: what each call renders its limit from."""

    key: KeyTemplate
    limit: int
    duration: float
    on_conflict: OnConflict

    def limit_for(self, args: Any, kwargs: Any) -> ConcurrencyLimit:
        """The call's rendered limit; InvalidTask if the key cannot be rendered."""
        return ConcurrencyLimit(
            key=self.key.render(args, kwargs),
            limit=self.limit,
            duration=self.duration,
            on_conflict=self.on_conflict,
        )


def policy_for(task: Task) -> ConcurrencyPolicy | None:
    """The task's validated policy, or None for a task without a limit; InvalidTask
    naming the task and the option for a bad declaration."""
    return _declarations.get(task, None)


def _parse(task: Task, declared: dict[str, Any]) -> ConcurrencyPolicy:
    path = task.module_path

    def invalid(option: str, problem: str) -> InvalidTask:
        return InvalidTask(f"Task {path}: {option} {problem}")

    template = declared.get("concurrency_key")
    if template is None:
        others = ", ".join(sorted(declared))
        raise invalid(
            "concurrency_key",
            f"is missing: {others} only take effect together with a concurrency_key "
            "template such as 'account:{account_id}'.",
        )
    key = KeyTemplate.checked(
        path,
        "concurrency_key",
        template,
        task.func,
        task.takes_context,
        CONCURRENCY_KEY_MAX_LENGTH,
    )

    limit = declared.get("concurrency_limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise invalid("concurrency_limit", f"must be a whole number of at least 1, got {limit!r}.")

    duration = declared.get("concurrency_duration", DEFAULT_DURATION)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise invalid(
            "concurrency_duration", f"must be a number of seconds above 0, got {duration!r}."
        )

    on_conflict = declared.get("on_conflict", "block")
    if on_conflict not in ON_CONFLICT_CHOICES:
        raise invalid("on_conflict", f"must be 'block' or 'discard', got {on_conflict!r}.")

    return ConcurrencyPolicy(
        key=key, limit=limit, duration=float(duration), on_conflict=on_conflict
    )


_declarations: ParsedDeclarations[ConcurrencyPolicy | None] = ParsedDeclarations(
    OPTION_NAMES, _parse
)
