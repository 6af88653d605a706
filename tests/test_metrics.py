"""``dj_queue/metrics`` and ``dj_queue/stats.json``: the figures they export
against the tables' truth, who may read them, and the reading they share."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections
from django.db.models import Count, Min, Sum
from django.http import HttpResponse
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from dj_queue import metrics as families
from dj_queue.models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    FinishedTally,
    Pause,
    Process,
    ReadyExecution,
    ScheduledExecution,
    Semaphore,
)
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import JobError, complete_job, fail_job
from dj_queue.operations.queues import pause_queue
from dj_queue.reads import cache
from dj_queue.reads.figures import BoundedCount, QueueSummary, Snapshot
from tests.conftest import ROOT
from tests.taskapp.tasks import add, sync_account

pytestmark = pytest.mark.django_db

METRICS = reverse("dj_queue:metrics")
STATS = reverse("dj_queue:stats")
TOKEN = "metrics-token-for-default"
SEPARATE_TOKEN = "metrics-token-for-separate"
STATES = ("ready", "scheduled", "running", "blocked", "failed")
Labels = tuple[str, ...]
# The suite's TASKS, before the autouse fixture below overrides them.
SUITE_TASKS = copy.deepcopy(settings.TASKS)


# -- settings and clients --------------------------------------------------------------------


def metrics_tasks(
    token: str | None = TOKEN, cache_seconds: float = 0, *, separate: bool = False
) -> dict[str, Any]:
    """TASKS with the default backend only (or with "separate" too, whose
    token is SEPARATE_TOKEN), and a non-dj_queue backend called "dummy"."""
    tasks: dict[str, Any] = {"default": _with_metrics("default", token, cache_seconds)}
    if separate:
        tasks["separate"] = _with_metrics("separate", SEPARATE_TOKEN, cache_seconds)
    tasks["dummy"] = {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    return tasks


def _with_metrics(alias: str, token: str | None, cache_seconds: float) -> dict[str, Any]:
    params = copy.deepcopy(SUITE_TASKS[alias])
    params["OPTIONS"] = {
        **params["OPTIONS"],
        "metrics": {"token": token, "cache_seconds": cache_seconds},
    }
    return params


@pytest.fixture(autouse=True)
def metrics_settings() -> Iterator[None]:
    """Every test starts with a token for default, no caching, no kept reading."""
    cache.forget()
    with override_settings(TASKS=metrics_tasks()):
        yield
    cache.forget()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def logged_in(username: str, *, is_staff: bool, is_active: bool = True) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=is_staff)
    user.is_active = is_active
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(db: None) -> Client:
    return logged_in("staff", is_staff=True)


# -- reading responses -----------------------------------------------------------------------


def scrape(client: Client, **params: str) -> dict[str, Metric]:
    """The families of one ``metrics`` response, by name, with a scraper's token."""
    response = client.get(METRICS, params, headers=bearer(TOKEN))
    return parsed(response)


def parsed(response: HttpResponse) -> dict[str, Metric]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.content.decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Metric, *labels: str) -> dict[Labels, float]:
    return {tuple(s.labels[label] for label in labels): s.value for s in family.samples}


def exported_jobs(found: dict[str, Metric]) -> dict[Labels, float]:
    return samples(found["dj_queue_jobs"], "backend", "queue", "state")


def stats(client: Client, **params: str) -> dict[str, Any]:
    response = client.get(STATS, params, headers=bearer(TOKEN))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


# -- making jobs and reading the tables' truth -------------------------------------------------


def enqueue(queue: str, count: int = 1) -> list[uuid.UUID]:
    return [uuid.UUID(add.using(queue_name=queue).enqueue(1, 2).id) for _ in range(count)]


def raised(exc: BaseException) -> JobError:
    try:
        raise exc
    except BaseException as caught:
        return JobError.from_exception(caught)


def blocked_on(queue: str) -> None:
    """A job waiting on its concurrency key, whose one slot no job frees."""
    now = timezone.now()
    Semaphore.objects.create(
        key="account:7",
        value=0,
        expires_at=now + timedelta(minutes=5),
        created_at=now,
        updated_at=now,
    )
    sync_account.using(queue_name=queue).enqueue(7)


@pytest.fixture
def filled(worker_process: Process) -> None:
    """Queue "a": 3 ready (waiting 2 minutes), 2 scheduled, 1 running, 1 failed,
    2 succeeded; "limited": 1 blocked; "b": paused, empty."""
    enqueue("a", 7)
    claimed = claim_jobs(
        "default", process_id=worker_process.id, worker_id="w1", selectors=["a"], limit=4
    )
    first, second, third, _running = (job.id for job in claimed)
    assert complete_job("default", first, worker_process.id, 3, preserve=True)
    assert complete_job("default", second, worker_process.id, 3, preserve=True)
    assert fail_job("default", third, worker_process.id, raised(ValueError("boom")))
    later = timezone.now() + timedelta(hours=1)
    add.using(queue_name="a", run_after=later).enqueue(1, 2)
    add.using(queue_name="a", run_after=later).enqueue(1, 2)
    blocked_on("limited")
    assert pause_queue("default", "b")
    # A known wait, so the latency can be checked to the second.
    ReadyExecution.objects.filter(queue_name="a").update(
        created_at=timezone.now() - timedelta(minutes=2)
    )


def truth_jobs() -> dict[Labels, float]:
    """Every (backend, queue, state) → jobs, counted from the tables."""
    found: dict[Labels, float] = {}
    for state, model in (
        ("ready", ReadyExecution),
        ("scheduled", ScheduledExecution),
        ("blocked", BlockedExecution),
        ("failed", FailedExecution),
    ):
        rows = model.objects.values("queue_name").annotate(jobs=Count("pk"))
        found.update({("default", row["queue_name"], state): row["jobs"] for row in rows})
    running = ClaimedExecution.objects.values("job__queue_name").annotate(jobs=Count("pk"))
    found.update({("default", row["job__queue_name"], "running"): row["jobs"] for row in running})
    queues = {queue for _, queue, _ in found} | set(
        Pause.objects.values_list("queue_name", flat=True)
    )
    return {
        ("default", queue, state): found.get(("default", queue, state), 0)
        for queue in queues
        for state in STATES
    }


def truth_finished() -> dict[Labels, float]:
    rows = FinishedTally.objects.values("backend_alias", "queue_name", "status").annotate(
        jobs=Sum("count")
    )
    return {(row["backend_alias"], row["queue_name"], row["status"]): row["jobs"] for row in rows}


# -- the figures -----------------------------------------------------------------------------


def test_metrics_export_the_tables_figures(filled: None) -> None:
    before = time.time()
    found = scrape(Client())

    jobs = exported_jobs(found)
    assert jobs == truth_jobs()
    assert {key: value for key, value in jobs.items() if value} == {
        ("default", "a", "ready"): 3,
        ("default", "a", "scheduled"): 2,
        ("default", "a", "running"): 1,
        ("default", "a", "failed"): 1,
        ("default", "limited", "blocked"): 1,
    }
    capped = samples(found["dj_queue_jobs_capped"], "backend", "queue", "state")
    assert capped == {key: 0 for key in jobs}

    paused = samples(found["dj_queue_queue_paused"], "backend", "queue")
    assert paused == {("default", "a"): 0, ("default", "b"): 1, ("default", "limited"): 0}
    assert set(Pause.objects.values_list("queue_name", flat=True)) == {"b"}

    latency = samples(found["dj_queue_queue_latency_seconds"], "backend", "queue")
    oldest = ReadyExecution.objects.filter(queue_name="a").aggregate(at=Min("created_at"))["at"]
    assert latency[("default", "a")] == pytest.approx(time.time() - oldest.timestamp(), abs=5)
    assert latency[("default", "a")] == pytest.approx(120, abs=5)
    assert latency[("default", "b")] == latency[("default", "limited")] == 0

    processes = samples(found["dj_queue_processes"], "backend", "kind")
    assert processes == {
        ("default", "worker"): Process.objects.filter(kind="worker").count(),
        ("default", "supervisor"): 0,
        ("default", "dispatcher"): 0,
        ("default", "scheduler"): 0,
    }
    assert processes[("default", "worker")] == 1

    finished = found["dj_queue_jobs_finished"]
    assert finished.type == "counter"
    assert {s.name for s in finished.samples} == {"dj_queue_jobs_finished_total"}
    exported = samples(finished, "backend", "queue", "status")
    assert exported == truth_finished()
    assert exported == {("default", "a", "succeeded"): 2, ("default", "a", "failed"): 1}

    [(labels, taken_at)] = samples(found["dj_queue_scrape_timestamp_seconds"], "backend").items()
    assert labels == ("default",)
    assert before - 1 <= taken_at <= time.time() + 1


def test_every_family_is_typed_and_documented(filled: None) -> None:
    found = scrape(Client())
    assert {name: family.type for name, family in found.items()} == {
        "dj_queue_jobs": "gauge",
        "dj_queue_jobs_capped": "gauge",
        "dj_queue_queue_latency_seconds": "gauge",
        "dj_queue_queue_paused": "gauge",
        "dj_queue_processes": "gauge",
        "dj_queue_jobs_finished": "counter",
        "dj_queue_scrape_timestamp_seconds": "gauge",
    }
    assert all(family.documentation for family in found.values())
    assert "10,000" in found["dj_queue_jobs"].documentation


def test_a_capped_count_is_exported_as_its_lower_bound_and_flagged() -> None:
    exact, capped = BoundedCount(4), BoundedCount(10_000, capped=True)
    queue = QueueSummary("big", capped, exact, exact, exact, exact, 1.5, False)
    reading = Snapshot("default", "default", timezone.now(), (queue,), (), ())
    body, _ = families.exposition([reading])
    found = {f.name: f for f in text_string_to_metric_families(body.decode())}

    jobs = samples(found["dj_queue_jobs"], "queue", "state")
    assert jobs == {("big", "ready"): 10_000, **{("big", s): 4 for s in STATES[1:]}}
    flags = samples(found["dj_queue_jobs_capped"], "queue", "state")
    assert flags == {("big", "ready"): 1, **{("big", s): 0 for s in STATES[1:]}}


def test_stats_json_has_the_same_figures_from_the_same_reading(filled: None) -> None:
    client = Client()
    with override_settings(TASKS=metrics_tasks(cache_seconds=60)):
        found = scrape(client)
        data = stats(client)

    [reading] = data["backends"].values()
    assert reading["backend"] == "default"
    from_json: dict[Labels, float] = {}
    for queue in reading["queues"]:
        for state in STATES:
            from_json[("default", queue["name"], state)] = queue[state]["value"]
            assert queue[state]["capped"] is False
    assert from_json == exported_jobs(found)

    def per_queue(key: str) -> dict[Labels, float]:
        return {("default", queue["name"]): queue[key] for queue in reading["queues"]}

    assert per_queue("paused") == samples(found["dj_queue_queue_paused"], "backend", "queue")
    latency = samples(found["dj_queue_queue_latency_seconds"], "backend", "queue")
    assert per_queue("latency") == latency
    counts = {("default", kind): n for kind, n in reading["process_counts"].items()}
    assert counts == samples(found["dj_queue_processes"], "backend", "kind")
    totals = {("default", t["queue"], t["status"]): t["count"] for t in reading["finished_totals"]}
    assert totals == samples(found["dj_queue_jobs_finished"], "backend", "queue", "status")
    [taken_at] = samples(found["dj_queue_scrape_timestamp_seconds"], "backend").values()
    assert datetime.fromisoformat(reading["taken_at"]).timestamp() == taken_at


# -- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [METRICS, STATS])
def test_anonymous_requests_are_refused_without_figures(filled: None, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert b"dj_queue_jobs" not in response.content
    assert b"Bearer" in response.content


@pytest.mark.parametrize("url", [METRICS, STATS])
def test_users_who_are_not_active_staff_are_refused(db: None, url: str) -> None:
    assert logged_in("someone", is_staff=False).get(url).status_code == 403
    assert logged_in("gone", is_staff=True, is_active=False).get(url).status_code == 403


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}", TOKEN, "Bearer é"],
)
@pytest.mark.parametrize("url", [METRICS, STATS])
def test_a_wrong_token_is_refused(db: None, url: str, authorization: str) -> None:
    response = Client().get(url, headers={"Authorization": authorization})
    assert response.status_code == 403


def test_no_token_admits_when_none_is_configured(db: None) -> None:
    with override_settings(TASKS=metrics_tasks(token=None)):
        assert Client().get(METRICS, headers=bearer(TOKEN)).status_code == 403
        assert Client().get(METRICS, headers={"Authorization": "Bearer None"}).status_code == 403


@pytest.mark.parametrize("url", [METRICS, STATS])
def test_the_right_token_and_staff_are_admitted(db: None, staff: Client, url: str) -> None:
    assert Client().get(url, headers=bearer(TOKEN)).status_code == 200
    assert Client().get(url, headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    assert staff.get(url).status_code == 200
    # A staff session needs no token, and a wrong one does not undo it.
    assert staff.get(url, headers=bearer("not-the-token-at-all")).status_code == 200


@pytest.mark.parametrize("url", [METRICS, STATS])
@pytest.mark.parametrize("alias", ["nowhere", "dummy"])
def test_an_unknown_or_foreign_backend_is_not_found(db: None, url: str, alias: str) -> None:
    response = Client().get(url, {"backend": alias}, headers=bearer(TOKEN))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/plain")
    expected = "is not a dj_queue backend" if alias == "dummy" else "No task backend is called"
    assert f"{alias!r}" in response.content.decode()
    assert expected in response.content.decode()
    # Anyone else learns nothing about which backends exist.
    assert Client().get(url, {"backend": alias}).status_code == 403


@pytest.mark.django_db(databases=["default", "queue"])
def test_a_token_reads_only_its_own_backend() -> None:
    enqueue("a", 2)
    with override_settings(TASKS=metrics_tasks(separate=True)):
        add.using(backend="separate", queue_name="s").enqueue(1, 2)
        response = Client().get(METRICS, headers=bearer(SEPARATE_TOKEN))
        separate = exported_jobs(parsed(response))
        refused = Client().get(METRICS, {"backend": "default"}, headers=bearer(SEPARATE_TOKEN))
        only_default = exported_jobs(scrape(Client(), backend="default"))
        everything = exported_jobs(parsed(logged_in("staff", is_staff=True).get(METRICS)))
        data = stats(Client())

    assert separate == {("separate", "s", state): int(state == "ready") for state in STATES}
    assert refused.status_code == 403
    assert only_default == {("default", "a", state): 2 * (state == "ready") for state in STATES}
    assert everything == {**separate, **only_default}
    assert list(data["backends"]) == ["default"]


def test_views_answer_only_safe_methods_and_are_never_cached(db: None) -> None:
    client = Client()
    for url in (METRICS, STATS):
        response = client.get(url, headers=bearer(TOKEN))
        assert "no-store" in response["Cache-Control"]
        assert "max-age=0" in response["Cache-Control"]
        assert client.head(url, headers=bearer(TOKEN)).status_code == 200
        assert client.post(url, headers=bearer(TOKEN)).status_code == 405


# -- the shared reading ------------------------------------------------------------------------


def test_a_cached_reading_is_served_again_without_queries(db: None) -> None:
    enqueue("a", 2)
    client = Client()
    with override_settings(TASKS=metrics_tasks(cache_seconds=60)):
        first = scrape(client)
        enqueue("a", 3)
        with CaptureQueriesContext(connections["default"]) as queries:
            second = scrape(client)
            data = stats(client)
        assert len(queries) == 0, [query["sql"] for query in queries]

    assert exported_jobs(second)[("default", "a", "ready")] == 2
    assert data["backends"]["default"]["queues"][0]["ready"]["value"] == 2
    stamp = "dj_queue_scrape_timestamp_seconds"
    assert samples(second[stamp], "backend") == samples(first[stamp], "backend")


def test_without_caching_every_request_reads_anew(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = counted_readings(monkeypatch)
    enqueue("a", 2)
    client = Client()
    first = scrape(client)
    enqueue("a", 3)
    second = scrape(client)
    assert exported_jobs(first)[("default", "a", "ready")] == 2
    assert exported_jobs(second)[("default", "a", "ready")] == 5
    assert readings == ["default", "default"]


def test_a_reading_expires_after_cache_seconds(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    readings = counted_readings(monkeypatch)
    enqueue("a")
    with override_settings(TASKS=metrics_tasks(cache_seconds=0.2)):
        scrape(Client())
        scrape(Client())
        assert len(readings) == 1
        time.sleep(0.3)
        enqueue("a")
        assert exported_jobs(scrape(Client()))[("default", "a", "ready")] == 2
    assert len(readings) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_scrapers_share_one_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = counted_readings(monkeypatch, hold=0.3)
    enqueue("a", 2)
    scrapers = 5
    arrived = threading.Barrier(scrapers)
    bodies: list[bytes] = []

    def scrape_once() -> None:
        try:
            arrived.wait()
            response = Client().get(METRICS, headers=bearer(TOKEN))
            assert response.status_code == 200
            bodies.append(response.content)
        finally:
            connections.close_all()

    with override_settings(TASKS=metrics_tasks(cache_seconds=60)):
        threads = [threading.Thread(target=scrape_once) for _ in range(scrapers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    assert readings == ["default"]
    assert len(bodies) == scrapers
    assert len(set(bodies)) == 1
    assert b'dj_queue_jobs{backend="default",queue="a",state="ready"} 2.0' in bodies[0]


def counted_readings(monkeypatch: pytest.MonkeyPatch, *, hold: float = 0.0) -> list[str]:
    """Record every reading the cache makes (the real one, ``hold`` seconds
    longer, so that concurrent requests arrive while it is under way)."""
    readings: list[str] = []
    real = cache.snapshot

    def counted(backend_alias: str, **options: Any) -> Snapshot:
        readings.append(backend_alias)
        time.sleep(hold)
        return real(backend_alias, **options)

    monkeypatch.setattr(cache, "snapshot", counted)
    return readings


# -- without prometheus_client -----------------------------------------------------------------


def test_without_prometheus_client_metrics_answers_501_and_stats_still_work(
    staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "prometheus_client"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed

    response = staff.get(METRICS)
    assert response.status_code == 501
    assert response["Content-Type"].startswith("text/plain")
    assert b'pip install "dj-queue[prometheus]"' in response.content
    assert staff.get(STATS).status_code == 200


IMPORT_SCRIPT = """
import sys
sys.modules["prometheus_client"] = None  # as if it were not installed
import django
django.setup()
import dj_queue.urls
from django.urls import reverse
print(reverse("dj_queue:metrics", urlconf="tests.urls"))
"""


def test_the_urls_import_without_prometheus_client() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DJ_QUEUE_TEST_DB": "sqlite",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "/dj_queue/metrics"
