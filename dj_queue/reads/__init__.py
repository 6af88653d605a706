"""Read-only figures about the queue, beside the operations layer that writes it.

The admin dashboard, ``stats.json`` and the Prometheus metrics share these
functions, so every view shows the same numbers from the same queries. Every
read is bounded: counts stop at a cap (shown "10,000+"), lists at a length,
and no query scans the jobs table.
"""

from .failures import failure_groups
from .figures import (
    COUNT_CAP,
    BoundedCount,
    FailureGroup,
    FinishedTotal,
    MinuteThroughput,
    ProcessSummary,
    QueueSummary,
    RecurringSummary,
    Snapshot,
)
from .finished import finished_totals, throughput
from .processes import process_summaries
from .queues import queue_names, queue_summaries
from .recurring import recurring_summaries
from .snapshot import dj_queue_backend, snapshot

__all__ = [
    "COUNT_CAP",
    "BoundedCount",
    "FailureGroup",
    "FinishedTotal",
    "MinuteThroughput",
    "ProcessSummary",
    "QueueSummary",
    "RecurringSummary",
    "Snapshot",
    "dj_queue_backend",
    "failure_groups",
    "finished_totals",
    "process_summaries",
    "queue_names",
    "queue_summaries",
    "recurring_summaries",
    "snapshot",
    "throughput",
]
