"""The most recent failures, grouped by task and exception class."""

from __future__ import annotations

from django.db.models.functions import Left

from ..models import FailedExecution
from .figures import FailureGroup

# Failures read for the groups: the newest, through the created_at index.
FAILURE_SAMPLE = 1_000
MAX_GROUPS = 50
# Characters of a failure's message read (a message can be a whole page).
MESSAGE_CHARS = 300


def failure_groups(
    alias: str, *, sample: int = FAILURE_SAMPLE
) -> tuple[tuple[FailureGroup, ...], int]:
    """Groups of the newest ``sample`` failures, the most recent group first,
    and how many failures were read. A group's ``count`` is within the sample;
    acting on a group acts on all its failed jobs (``operations.interventions``)."""
    rows = list(
        FailedExecution.objects.using(alias)
        .order_by("-created_at", "-pk")
        .annotate(short_message=Left("message", MESSAGE_CHARS))
        .values_list("job__task_path", "exception_class", "created_at", "short_message")[:sample]
    )
    groups: dict[tuple[str, str], FailureGroup] = {}
    for task_path, exception_class, created_at, message in rows:
        key = (task_path, exception_class)
        group = groups.get(key)
        if group is None:
            groups[key] = FailureGroup(task_path, exception_class, 1, created_at, message)
        else:
            groups[key] = FailureGroup(
                task_path, exception_class, group.count + 1, group.latest_at, group.latest_message
            )
    return tuple(groups.values())[:MAX_GROUPS], len(rows)
