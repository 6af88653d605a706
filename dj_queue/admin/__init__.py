"""The Django admin for dj_queue: see what the queue holds, act through operations.

Rules kept here:
- Nothing in this package writes a queue table. Every action and the one form
  that changes something (adding a pause) call ``dj_queue.operations``; state
  rows are shown read only, and Django's own save and delete never reach them.
- Every query goes to the queue database (``queue_database_alias()``).
- Pages stay quick on millions of jobs: counts are bounded, lists are ordered by
  an index, no filter runs ``SELECT DISTINCT`` over a big table, and search is
  an exact id or a prefix, never a substring scan.

Django's admin autodiscovery imports this package only when
``django.contrib.admin`` is installed; importing it elsewhere registers nothing.

The pages live in submodules, one per page family: ``base`` (what every page
shares), ``actions`` (the helpers behind the actions), ``jobs``, ``failures``
(failed executions), ``executions`` (the other state tables), ``processes``,
``control`` (recurring tasks, semaphores and pauses) and ``dashboard`` (the
operator's overview, over ``dj_queue.reads``: its views, reached through the
job admin's URLs, with ``dashboard_panels`` putting the figures into words and
a chart and ``dashboard_actions`` running its buttons through operations).
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.db.models import Model

from ..models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    Pause,
    Process,
    ReadyExecution,
    RecurringTask,
    ScheduledExecution,
    Semaphore,
)
from .base import BoundedPaginator, QueueModelAdmin
from .control import PauseAdmin, RecurringTaskAdmin, SemaphoreAdmin
from .executions import (
    BlockedExecutionAdmin,
    ClaimedExecutionAdmin,
    ExecutionAdmin,
    ReadyExecutionAdmin,
    ScheduledExecutionAdmin,
)
from .failures import FailedExecutionAdmin
from .jobs import STATE_LABELS, STATE_TABLES, JobAdmin, JobStateFilter, in_state, job_state
from .processes import ProcessAdmin

__all__ = [
    "COUNT_LIMIT",
    "MODEL_ADMINS",
    "PAGES_AHEAD",
    "STATE_LABELS",
    "STATE_TABLES",
    "BlockedExecutionAdmin",
    "BoundedPaginator",
    "ClaimedExecutionAdmin",
    "ExecutionAdmin",
    "FailedExecutionAdmin",
    "JobAdmin",
    "JobStateFilter",
    "PauseAdmin",
    "ProcessAdmin",
    "QueueModelAdmin",
    "ReadyExecutionAdmin",
    "RecurringTaskAdmin",
    "ScheduledExecutionAdmin",
    "SemaphoreAdmin",
    "in_state",
    "job_state",
    "register",
]

# The submodules read these two from here each time they count, so changing
# ``dj_queue.admin.COUNT_LIMIT`` changes every count.
# Rows counted at most for a changelist; beyond it the page says "10,000+".
COUNT_LIMIT = 10_000
# On a deep page, rows are counted up to this many pages past it, so the next
# pages can be listed.
PAGES_AHEAD = 10


MODEL_ADMINS: dict[type[Model], type[admin.ModelAdmin]] = {
    Job: JobAdmin,
    FailedExecution: FailedExecutionAdmin,
    ReadyExecution: ReadyExecutionAdmin,
    ScheduledExecution: ScheduledExecutionAdmin,
    ClaimedExecution: ClaimedExecutionAdmin,
    BlockedExecution: BlockedExecutionAdmin,
    Process: ProcessAdmin,
    RecurringTask: RecurringTaskAdmin,
    Semaphore: SemaphoreAdmin,
    Pause: PauseAdmin,
}


def register(site: admin.AdminSite) -> None:
    """Register dj_queue's pages on ``site`` (done for Django's default site)."""
    for model, model_admin in MODEL_ADMINS.items():
        if not site.is_registered(model):
            site.register(model, model_admin)


if apps.is_installed("django.contrib.admin"):
    register(admin.site)
