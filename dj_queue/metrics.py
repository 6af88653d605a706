"""The Prometheus families of dj_queue's figures, built from snapshots.

prometheus_client is an optional dependency (``dj-queue[prometheus]``), so it
is imported inside the functions that need it: this module, and the URLs that
lead to it, import without it, and only the ``metrics`` view needs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .reads.figures import COUNT_CAP, Snapshot

if TYPE_CHECKING:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

INSTALL_HINT = 'The metrics need prometheus_client: pip install "dj-queue[prometheus]"\n'
# The states a queue's jobs are counted in, as QueueSummary names them.
STATES = ("ready", "scheduled", "running", "blocked", "failed")


class PrometheusClientMissing(Exception):
    """prometheus_client is not installed; the message says how to install it."""


def exposition(snapshots: Sequence[Snapshot]) -> tuple[bytes, str]:
    """The text exposition of ``snapshots`` and its content type."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError as exc:
        raise PrometheusClientMissing(INSTALL_HINT) from exc
    # A registry of its own, not the global one: nothing but these figures,
    # and nothing kept between requests.
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshots))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class SnapshotCollector:
    """A custom collector over readings already made: collecting reads nothing."""

    def __init__(self, snapshots: Sequence[Snapshot]) -> None:
        self.snapshots = tuple(snapshots)

    def collect(self) -> Iterator[Metric]:
        return iter(families(self.snapshots))


def families(snapshots: Sequence[Snapshot]) -> list[Metric]:
    """Every family, each holding the samples of every snapshot (a family
    may appear only once in an exposition)."""
    return [
        _jobs(snapshots),
        _jobs_capped(snapshots),
        _latency(snapshots),
        _paused(snapshots),
        _processes(snapshots),
        _finished(snapshots),
        _taken_at(snapshots),
    ]


def _gauge(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, documentation, labels=labels)


def _jobs(snapshots: Sequence[Snapshot]) -> GaugeMetricFamily:
    family = _gauge(
        "dj_queue_jobs",
        f"Jobs of a queue in a state. Counts stop at {COUNT_CAP:,}: past it the value is "
        "a lower bound and dj_queue_jobs_capped is 1.",
        ["backend", "queue", "state"],
    )
    for taken in snapshots:
        for queue in taken.queues:
            for state in STATES:
                count = getattr(queue, state).value
                family.add_metric([taken.backend, queue.name, state], count)
    return family


def _jobs_capped(snapshots: Sequence[Snapshot]) -> GaugeMetricFamily:
    family = _gauge(
        "dj_queue_jobs_capped",
        f"1 when dj_queue_jobs stopped counting at {COUNT_CAP:,} (a lower bound), else 0.",
        ["backend", "queue", "state"],
    )
    for taken in snapshots:
        for queue in taken.queues:
            for state in STATES:
                capped = getattr(queue, state).capped
                family.add_metric([taken.backend, queue.name, state], 1 if capped else 0)
    return family


def _latency(snapshots: Sequence[Snapshot]) -> GaugeMetricFamily:
    family = _gauge(
        "dj_queue_queue_latency_seconds",
        "Seconds the oldest ready job of a queue has waited (0 when none is ready).",
        ["backend", "queue"],
    )
    for taken in snapshots:
        for queue in taken.queues:
            family.add_metric([taken.backend, queue.name], queue.latency)
    return family


def _paused(snapshots: Sequence[Snapshot]) -> GaugeMetricFamily:
    family = _gauge(
        "dj_queue_queue_paused",
        "1 when a queue is paused (its ready jobs are not claimed), else 0.",
        ["backend", "queue"],
    )
    for taken in snapshots:
        for queue in taken.queues:
            family.add_metric([taken.backend, queue.name], 1 if queue.paused else 0)
    return family


def _processes(snapshots: Sequence[Snapshot]) -> GaugeMetricFamily:
    family = _gauge(
        "dj_queue_processes",
        "Registered runtime processes of a backend by kind.",
        ["backend", "kind"],
    )
    for taken in snapshots:
        for kind, count in taken.process_counts().items():
            family.add_metric([taken.backend, kind], count)
    return family


def _finished(snapshots: Sequence[Snapshot]) -> CounterMetricFamily:
    from prometheus_client.core import CounterMetricFamily

    # CounterMetricFamily appends "_total": exported as dj_queue_jobs_finished_total.
    family = CounterMetricFamily(
        "dj_queue_jobs_finished",
        "Jobs that ended, by queue and status (succeeded or failed), as the runtime "
        "tallied them in the database: it survives restarts and pruned jobs.",
        labels=["backend", "queue", "status"],
    )
    for taken in snapshots:
        for total in taken.finished_totals:
            family.add_metric([taken.backend, total.queue_name, total.status], total.count)
    return family


def _taken_at(snapshots: Sequence[Snapshot]) -> GaugeMetricFamily:
    family = _gauge(
        "dj_queue_scrape_timestamp_seconds",
        "Unix time the figures were read; older than the scrape when a cached "
        "reading was served (see OPTIONS['metrics']['cache_seconds']).",
        ["backend"],
    )
    for taken in snapshots:
        family.add_metric([taken.backend], taken.taken_at.timestamp())
    return family
