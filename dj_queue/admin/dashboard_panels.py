"""What the dashboard's panels show, made from one ``reads.snapshot``.

The figures are put into words and the throughput chart into coordinates
here, so the templates only lay them out and the page and its background
refresh render exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import Truncator

from ..reads import (
    FailureGroup,
    MinuteThroughput,
    ProcessSummary,
    QueueSummary,
    RecurringSummary,
    Snapshot,
)

# The panels, in page order: each is one template and one container on the page.
PANELS = ("queues", "throughput", "processes", "recurring", "failures")

# Characters of a failure's message shown in its row (the whole read is its title).
MESSAGE_SHOWN = 120

# -- words --------------------------------------------------------------------------------


def human_age(seconds: float) -> str:
    """``0 s``, ``12 s``, ``3 min``, ``2 h``, ``4 d``: read at a glance, where an
    exact figure would make an operator do arithmetic (stats.json has it)."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86_400:
        return f"{whole // 3600} h"
    return f"{whole // 86_400} d"


def moment(value: datetime | None, missing: str = "—") -> str:
    """A time in the site's zone and format, or ``missing``."""
    if value is None:
        return missing
    return str(date_format(timezone.localtime(value), "DATETIME_FORMAT"))


def clock(value: datetime) -> str:
    """Hours and minutes in the site's zone: enough to place a minute of the hour."""
    return timezone.localtime(value).strftime("%H:%M")


# -- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    ready: str
    scheduled: str
    running: str
    blocked: str
    failed: str
    latency: str
    paused: bool


def queue_row(queue: QueueSummary) -> QueueRow:
    return QueueRow(
        name=queue.name,
        ready=queue.ready.label,
        scheduled=queue.scheduled.label,
        running=queue.running.label,
        blocked=queue.blocked.label,
        failed=queue.failed.label,
        latency=human_age(queue.latency),
        paused=queue.paused,
    )


@dataclass(frozen=True, slots=True)
class HeldJob:
    id: str
    url: str


@dataclass(frozen=True, slots=True)
class ProcessRow:
    kind: str
    name: str
    hostname: str
    pid: int
    heartbeat: str
    held: str
    held_jobs: tuple[HeldJob, ...]
    # More are held than are named: the row says so after the links.
    more_held: bool


def process_row(process: ProcessSummary, site_name: str) -> ProcessRow:
    jobs = tuple(
        HeldJob(str(job_id), reverse(f"{site_name}:dj_queue_job_change", args=[job_id]))
        for job_id in process.held_job_ids
    )
    return ProcessRow(
        kind=process.kind,
        name=process.name,
        hostname=process.hostname,
        pid=process.pid,
        heartbeat=human_age(process.heartbeat_age),
        held=process.held.label,
        held_jobs=jobs,
        more_held=process.held.capped or process.held.value > len(jobs),
    )


@dataclass(frozen=True, slots=True)
class RecurringRow:
    key: str
    task_path: str
    schedule: str
    kind: str
    next_run: str
    last_run: str


def recurring_row(task: RecurringSummary) -> RecurringRow:
    return RecurringRow(
        key=task.key,
        task_path=task.task_path,
        schedule=task.schedule,
        kind="static" if task.static else "dynamic",
        next_run=moment(task.next_run, "unreadable schedule"),
        last_run=moment(task.last_run_at, "never"),
    )


@dataclass(frozen=True, slots=True)
class FailureRow:
    task_path: str
    exception_class: str
    count: str
    latest: str
    message: str
    full_message: str


def failure_row(group: FailureGroup) -> FailureRow:
    message = group.latest_message or ""
    return FailureRow(
        task_path=group.task_path,
        exception_class=group.exception_class,
        count=f"{group.count:,}",
        latest=moment(group.latest_at),
        message=Truncator(message).chars(MESSAGE_SHOWN),
        full_message=message,
    )


# -- the throughput chart -------------------------------------------------------------------

# The SVG's own units; it is drawn at the page's width.
CHART_WIDTH = 600
CHART_HEIGHT = 160
PLOT_LEFT = 64  # room for the axis label of the maximum ("12,345/min")
PLOT_TOP = 10
PLOT_BOTTOM = CHART_HEIGHT - 20  # room for the times under the bars
PLOT_RIGHT = CHART_WIDTH - 4


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute: succeeded jobs at the bottom, failed ones stacked on them."""

    x: float
    width: float
    succeeded_y: float
    succeeded_height: float
    failed_y: float
    failed_height: float
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    succeeded: int
    failed: int
    peak: int  # the most jobs that ended in one minute: the axis's top
    first_label: str
    last_label: str
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = PLOT_LEFT
    top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM
    right: int = PLOT_RIGHT

    # Where the labels sit, so the template does no arithmetic.
    @property
    def plot_height(self) -> int:
        return self.bottom - self.top

    @property
    def axis_label_x(self) -> int:
        return self.left - 4

    @property
    def peak_label_y(self) -> int:
        return self.top + 4

    @property
    def time_label_y(self) -> int:
        return self.height - 4


def _bar(index: int, minute: MinuteThroughput, slot: float, scale: float) -> Bar:
    succeeded = minute.succeeded * scale
    failed = minute.failed * scale
    x = PLOT_LEFT + index * slot
    return Bar(
        x=round(x + slot * 0.1, 2),
        width=round(slot * 0.8, 2),
        succeeded_y=round(PLOT_BOTTOM - succeeded, 2),
        succeeded_height=round(succeeded, 2),
        failed_y=round(PLOT_BOTTOM - succeeded - failed, 2),
        failed_height=round(failed, 2),
        title=f"{clock(minute.start)}: {minute.succeeded} succeeded, {minute.failed} failed",
    )


def throughput_chart(minutes: tuple[MinuteThroughput, ...]) -> Chart:
    """The bars of the last hour, scaled so the busiest minute fills the plot."""
    peak = max((minute.succeeded + minute.failed for minute in minutes), default=0)
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(1, len(minutes))
    scale = (PLOT_BOTTOM - PLOT_TOP) / max(1, peak)
    return Chart(
        bars=tuple(_bar(index, minute, slot, scale) for index, minute in enumerate(minutes)),
        succeeded=sum(minute.succeeded for minute in minutes),
        failed=sum(minute.failed for minute in minutes),
        peak=peak,
        first_label=clock(minutes[0].start) if minutes else "",
        last_label=clock(minutes[-1].start) if minutes else "",
    )


# -- the panels' context --------------------------------------------------------------------


def panel_context(snapshot: Snapshot, site_name: str) -> dict[str, Any]:
    """What the panel templates read of a snapshot; the page adds who may act
    and where the forms post."""
    return {
        "queues": [queue_row(queue) for queue in snapshot.queues],
        "chart": throughput_chart(snapshot.throughput),
        "processes": [process_row(process, site_name) for process in snapshot.processes],
        "recurring": [recurring_row(task) for task in snapshot.recurring],
        "failures": [failure_row(group) for group in snapshot.failure_groups],
        "failures_sampled": snapshot.failures_sampled,
        "taken_at": snapshot.taken_at,
    }
