"""The admin's queue dashboard: its panels against the tables, its background
refresh endpoint, its buttons, and who may see and press them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dj_queue.admin.dashboard_panels import PANELS, human_age, throughput_chart
from dj_queue.models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    FinishedTally,
    Job,
    Pause,
    ReadyExecution,
    RecurringTask,
    ScheduledExecution,
    Semaphore,
)
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import JobError, complete_job, fail_job
from dj_queue.operations.queues import is_paused, pause_queue
from dj_queue.reads import MinuteThroughput
from tests.taskapp.tasks import add, sync_account

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:dj_queue_dashboard")
PANELS_URL = reverse("admin:dj_queue_dashboard_panels")
ACTION = reverse("admin:dj_queue_dashboard_action")
APP_INDEX = reverse("admin:app_list", args=["dj_queue"])
LOGIN = reverse("admin:login")
ADD = "tests.taskapp.tasks.add"


# -- reading the HTML ------------------------------------------------------------------


@dataclass
class Row:
    """One ``<tr>``: its attributes, its ``data-field`` cells' text, its buttons."""

    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """The rows, buttons and elements with an id of a dashboard page or panel."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.ids: dict[str, dict[str, str]] = {}
        self.forms: list[dict[str, str]] = []
        self._row: Row | None = None
        self._field: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.ids[found["id"]] = found
        if tag == "form":
            self.forms.append({})
        if tag == "input" and self.forms:
            self.forms[-1][found.get("name", "")] = found.get("value", "")
        if tag == "tr":
            self._row = Row(found)
            self.rows.append(self._row)
        elif self._row is not None:
            self._in_row(tag, found)

    def _in_row(self, tag: str, found: dict[str, str]) -> None:
        assert self._row is not None
        if tag in ("td", "th") and "data-field" in found:
            self._field = found["data-field"]
            self._row.fields[self._field] = ""
        elif tag == "button" and "data-action" in found:
            self._row.actions.append(found["data-action"])
        elif tag == "a":
            self._row.links.append(found.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._field = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field is not None:
            self._row.fields[self._field] += data

    def by(self, attribute: str) -> dict[str, Row]:
        return {row.attrs[attribute]: row for row in self.rows if attribute in row.attrs}

    def cells(self, attribute: str, key: str) -> dict[str, str]:
        return {name: text.strip() for name, text in self.by(attribute)[key].fields.items()}


def page_of(response) -> Page:
    assert response.status_code == 200, response.content[:500]
    return Page(response.content.decode())


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# -- making queue state ------------------------------------------------------------------


def raised(exc: BaseException) -> JobError:
    try:
        raise exc
    except BaseException as caught:
        return JobError.from_exception(caught)


def enqueue(queue: str, task=add, **options) -> uuid.UUID:
    return uuid.UUID(task.using(queue_name=queue, **options).enqueue(1, 2).id)


def claim(process, queue: str, limit: int) -> list[uuid.UUID]:
    jobs = claim_jobs(
        "default", process_id=process.id, worker_id="w-1", selectors=[queue], limit=limit
    )
    assert len(jobs) == limit
    return [job.id for job in jobs]


def blocked_job() -> uuid.UUID:
    """A job waiting for the one slot of its concurrency key, held elsewhere."""
    now = timezone.now()
    Semaphore.objects.create(
        key="account:7",
        value=0,
        expires_at=now + timedelta(minutes=5),
        created_at=now,
        updated_at=now,
    )
    return uuid.UUID(sync_account.using(queue_name="limited").enqueue(7).id)


def recurring_task(key: str, schedule: str, *, static: bool = False) -> RecurringTask:
    now = timezone.now()
    return RecurringTask.objects.create(
        key=key, task_path=ADD, schedule=schedule, static=static, created_at=now, updated_at=now
    )


@dataclass
class World:
    process: object
    held: list[uuid.UUID]
    failed: list[uuid.UUID]
    exception_class: str


@pytest.fixture
def world(worker_process) -> World:
    """Several queues in every state, a pause, a recurring task and a process."""
    for _ in range(3):
        enqueue("emails")
    enqueue("emails", run_after=timezone.now() + timedelta(hours=1))
    for _ in range(5):
        enqueue("work")
    taken = claim(worker_process, "work", 4)
    failed = taken[:2]
    for job_id in failed:
        assert fail_job("default", job_id, worker_process.id, raised(ValueError("no inbox")))
    assert complete_job("default", taken[2], worker_process.id, 3, preserve=True)
    enqueue("reports")
    assert pause_queue("default", "reports")
    blocked_job()
    recurring_task("nightly", "0 3 * * *")
    exception_class = FailedExecution.objects.get(job_id=failed[0]).exception_class
    return World(worker_process, [taken[3]], failed, exception_class)


# -- the tables' truth -------------------------------------------------------------------


def queue_truth(name: str) -> dict[str, str]:
    running = ClaimedExecution.objects.filter(job__queue_name=name).count()
    return {
        "ready": str(ReadyExecution.objects.filter(queue_name=name).count()),
        "scheduled": str(ScheduledExecution.objects.filter(queue_name=name).count()),
        "running": str(running),
        "blocked": str(BlockedExecution.objects.filter(queue_name=name).count()),
        "failed": str(FailedExecution.objects.filter(queue_name=name).count()),
        "paused": "yes" if Pause.objects.filter(queue_name=name).exists() else "no",
    }


def tally(status: str) -> int:
    rows = FinishedTally.objects.filter(backend_alias="default", status=status)
    return int(rows.aggregate(jobs=Sum("count"))["jobs"] or 0)


# -- clients -------------------------------------------------------------------------------


def user_with(*codenames: str, name: str = "staff") -> User:
    user = User.objects.create_user(name, f"{name}@example.com", "pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def client_for(user: User, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


@pytest.fixture
def superuser(db) -> Client:
    return client_for(User.objects.create_superuser("admin", "admin@example.com", "pw"))


@pytest.fixture
def changer(db) -> Client:
    return client_for(user_with("view_job", "change_job", name="changer"))


def post(client: Client, action: str, **fields: str):
    return client.post(ACTION, {"backend": "default", "action": action, **fields})


# -- the panels against the tables ---------------------------------------------------------


def test_queue_panel_shows_each_queue_as_the_tables_count_it(superuser, world):
    page = page_of(superuser.get(DASHBOARD))

    assert "dj-queue-queues" in page.ids
    shown = page.by("data-queue")
    assert set(shown) == {"emails", "work", "reports", "limited"}
    for name in shown:
        cells = page.cells("data-queue", name)
        assert {key: cells[key] for key in queue_truth(name)} == queue_truth(name), name
        assert re.fullmatch(r"\d+ (s|min)", cells["latency"]), cells["latency"]
    assert page.cells("data-queue", "emails")["ready"] == "3"
    assert page.cells("data-queue", "emails")["scheduled"] == "1"
    assert page.cells("data-queue", "work")["running"] == "1"
    assert page.cells("data-queue", "work")["failed"] == "2"
    assert page.cells("data-queue", "limited")["blocked"] == "1"
    assert shown["reports"].actions == ["resume"]
    assert shown["emails"].actions == ["pause"]


def test_throughput_chart_totals_the_hour_as_the_tally_counts_it(superuser, world):
    page = page_of(superuser.get(DASHBOARD))

    svg = page.ids["dj-queue-throughput"]
    assert (svg["data-succeeded"], svg["data-failed"]) == (str(tally("succeeded")), "2")
    assert svg["data-succeeded"] == "1"
    content = superuser.get(PANELS_URL).json()["panels"]["throughput"]
    # A title for the chart and one per minute's bar, the axis's top labelled.
    assert content.count("<title id=") == 1
    assert content.count("<title>") == 60
    assert 'data-axis="max">3/min<' in content
    assert "1 succeeded," in content and "2 failed" in content


def test_process_panel_shows_the_process_and_links_the_jobs_it_holds(superuser, world):
    page = page_of(superuser.get(DASHBOARD))

    row = page.by("data-process")["test-worker"]
    cells = page.cells("data-process", "test-worker")
    assert cells["kind"] == "worker"
    assert cells["hostname"] == world.process.hostname
    assert cells["pid"] == str(world.process.pid)
    assert re.fullmatch(r"\d+ s", cells["heartbeat"])
    assert cells["held"] == str(ClaimedExecution.objects.filter(process=world.process).count())
    assert row.links == [reverse("admin:dj_queue_job_change", args=[world.held[0]])]


def test_recurring_panel_lists_tasks_with_their_runs(superuser, world):
    recurring_task("broken", "not a schedule", static=True)
    page = page_of(superuser.get(DASHBOARD))

    nightly = page.cells("data-recurring", "nightly")
    assert (nightly["task_path"], nightly["schedule"], nightly["kind"]) == (
        ADD,
        "0 3 * * *",
        "dynamic",
    )
    assert nightly["last_run"] == "never"
    assert nightly["next_run"] not in ("", "—", "unreadable schedule")
    broken = page.cells("data-recurring", "broken")
    assert (broken["kind"], broken["next_run"]) == ("static", "unreadable schedule")


def test_failure_panel_groups_failures_by_task_and_exception(superuser, world, worker_process):
    [other] = claim(worker_process, "work", 1)
    assert fail_job("default", other, worker_process.id, raised(KeyError("x" * 500)))
    page = page_of(superuser.get(DASHBOARD))

    groups = {
        (row.attrs["data-failure-task"], row.attrs["data-failure-exception"]): row
        for row in page.rows
        if "data-failure-task" in row.attrs
    }
    truth = {
        (task, exception): str(
            FailedExecution.objects.filter(job__task_path=task, exception_class=exception).count()
        )
        for task, exception in FailedExecution.objects.values_list(
            "job__task_path", "exception_class"
        )
    }
    assert {key: row.fields["count"].strip() for key, row in groups.items()} == truth
    value_error = groups[(ADD, world.exception_class)]
    assert value_error.fields["message"].strip() == "no inbox"
    assert value_error.actions == ["retry_group", "discard_group"]
    key_error = next(row for key, row in groups.items() if key != (ADD, world.exception_class))
    assert len(key_error.fields["message"].strip()) <= 120
    assert "In the last 3 failures" in superuser.get(DASHBOARD).content.decode()


def test_empty_panels_keep_their_tables_and_say_so(superuser):
    page = page_of(superuser.get(DASHBOARD))
    content = superuser.get(DASHBOARD).content.decode()

    for table in ("queues", "processes", "recurring", "failures"):
        assert f"dj-queue-{table}" in page.ids
    assert page.ids["dj-queue-throughput"]["data-succeeded"] == "0"
    assert page.ids["dj-queue-throughput"]["data-failed"] == "0"
    assert "No queue has waiting work." in content
    assert "No recurring task." in content
    assert "No failed job." in content
    assert "no job ended" in content


# -- the page and its background refresh ------------------------------------------------------


def panel_sections(content: str) -> dict[str, str]:
    found = re.findall(
        r'<section class="dj-queue-panel" data-panel="(\w+)">(.*?)</section>', content, re.S
    )
    return dict(found)


def without_tokens(html: str) -> str:
    """CSRF tokens are masked afresh at each render; the rest must match."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_panels_endpoint_returns_the_panels_of_the_page(superuser, world):
    with mock.patch("django.utils.timezone.now", return_value=timezone.now()):
        content = superuser.get(DASHBOARD).content.decode()
        response = superuser.get(PANELS_URL, {"backend": "default"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert list(data["panels"]) == list(PANELS)
    assert timezone.datetime.fromisoformat(data["taken_at"])
    sections = panel_sections(content)
    assert list(sections) == list(PANELS)
    for name, html in data["panels"].items():
        assert without_tokens(html) == without_tokens(sections[name]), name
    assert 'data-queue="emails"' in data["panels"]["queues"]


def test_root_element_carries_the_refresh_contract(superuser):
    page = page_of(superuser.get(DASHBOARD))
    root = page.ids["dj-queue-dashboard"]

    assert root["data-refresh-seconds"] == "5"
    assert root["data-refreshes"] == "0"
    assert root["data-refresh-url"] == f"{PANELS_URL}?backend=default"
    content = superuser.get(DASHBOARD).content.decode()
    assert 'credentials: "same-origin"' in content
    assert "<link" not in content.split('id="dj-queue-dashboard"')[1]


@pytest.mark.parametrize(
    ("given", "seconds"), [("1", "1"), ("30", "30"), ("0", "1"), ("1000", "300"), ("x", "5")]
)
def test_refresh_parameter_is_held_to_its_bounds(superuser, given, seconds):
    root = page_of(superuser.get(DASHBOARD, {"refresh": given})).ids["dj-queue-dashboard"]

    assert root["data-refresh-seconds"] == seconds
    if given != "x":
        assert root["data-refresh-url"] == f"{PANELS_URL}?backend=default&refresh={seconds}"


@pytest.mark.django_db(databases=["default", "queue"])
def test_backend_switcher_and_a_backend_of_its_own_database(superuser):
    add.using(backend="separate", queue_name="elsewhere").enqueue(1, 2)
    enqueue("here")

    default = page_of(superuser.get(DASHBOARD))
    separate = page_of(superuser.get(DASHBOARD, {"backend": "separate", "refresh": "9"}))

    assert set(default.by("data-queue")) == {"here"}
    assert set(separate.by("data-queue")) == {"elsewhere"}
    content = superuser.get(DASHBOARD).content.decode()
    assert f'href="{DASHBOARD}?backend=separate"' in content
    [form] = [form for form in separate.forms if form.get("action") == "pause"]
    assert (form["backend"], form["refresh"]) == ("separate", "9")

    response = superuser.post(
        ACTION, {"backend": "separate", "action": "pause", "queue": "elsewhere", "refresh": "9"}
    )
    assert response.status_code == 303
    assert response["Location"] == f"{DASHBOARD}?backend=separate&refresh=9"
    assert is_paused("queue", "elsewhere")
    assert not is_paused("default", "elsewhere")


# -- who may see and act ----------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(client):
    for response in (client.get(DASHBOARD), client.get(PANELS_URL), client.post(ACTION)):
        assert response.status_code == 302
        assert response["Location"].startswith(LOGIN)


def test_staff_without_the_view_permission_is_refused(db):
    staff = client_for(user_with())

    assert staff.get(DASHBOARD).status_code == 403
    assert staff.get(PANELS_URL).status_code == 403


def test_view_only_users_see_no_buttons_and_cannot_act(world):
    viewer = client_for(user_with("view_job"))
    response = viewer.get(DASHBOARD)
    page = page_of(response)

    assert page.by("data-queue") and page.by("data-failure-task")
    assert all(row.actions == [] for row in page.rows)
    assert "<form" not in response.content.decode().split('id="dj-queue-dashboard"')[1]
    assert "<form" not in viewer.get(PANELS_URL).json()["panels"]["queues"]
    assert post(viewer, "pause", queue="emails").status_code == 403
    retry = post(viewer, "retry_group", task_path=ADD, exception_class=world.exception_class)
    assert retry.status_code == 403
    assert not is_paused("default", "emails")
    assert FailedExecution.objects.filter(job_id__in=world.failed).count() == 2


# -- the buttons ----------------------------------------------------------------------------


def test_pause_and_resume_a_queue(changer, world):
    response = post(changer, "pause", queue="emails", refresh="7")

    assert response.status_code == 303
    assert response["Location"] == f"{DASHBOARD}?backend=default&refresh=7"
    assert is_paused("default", "emails")
    shown = changer.get(response["Location"])
    assert messages_of(shown) == ["Paused queue emails."]
    assert page_of(shown).by("data-queue")["emails"].actions == ["resume"]
    assert '<ul class="messagelist">' in shown.content.decode()

    again = changer.get(post(changer, "pause", queue="emails")["Location"])
    assert messages_of(again) == ["Queue emails was already paused."]

    resumed = changer.get(post(changer, "resume", queue="emails")["Location"])
    assert messages_of(resumed) == ["Resumed queue emails."]
    assert not is_paused("default", "emails")
    assert page_of(resumed).cells("data-queue", "emails")["paused"] == "no"


def test_retry_a_failure_group(changer, world):
    response = post(changer, "retry_group", task_path=ADD, exception_class=world.exception_class)

    assert response.status_code == 303
    assert not FailedExecution.objects.filter(job_id__in=world.failed).exists()
    assert ReadyExecution.objects.filter(job_id__in=world.failed).count() == 2
    shown = changer.get(response["Location"])
    assert messages_of(shown) == [f"Retried 2 failed jobs of {ADD} ({world.exception_class})."]
    assert not page_of(shown).by("data-failure-task")

    nothing = changer.get(
        post(changer, "retry_group", task_path=ADD, exception_class=world.exception_class)[
            "Location"
        ]
    )
    assert "nothing retried" in messages_of(nothing)[0]


def test_discard_a_failure_group(changer, world):
    content = changer.get(DASHBOARD).content.decode()
    assert 'data-confirm="Discard every failed job of this group?' in content
    assert "onsubmit" not in content

    response = post(changer, "discard_group", task_path=ADD, exception_class=world.exception_class)

    assert response.status_code == 303
    assert not Job.objects.filter(pk__in=world.failed).exists()
    shown = changer.get(response["Location"])
    assert messages_of(shown) == [f"Discarded 2 failed jobs of {ADD} ({world.exception_class})."]


def test_an_action_needs_a_csrf_token(world):
    client = client_for(user_with("view_job", "change_job"), enforce_csrf_checks=True)

    refused = post(client, "pause", queue="emails")
    assert refused.status_code == 403
    assert not is_paused("default", "emails")

    page = page_of(client.get(DASHBOARD))
    form = next(form for form in page.forms if form.get("queue") == "emails")
    assert set(form) == {"csrfmiddlewaretoken", "backend", "action", "queue"}
    accepted = client.post(ACTION, form)
    assert accepted.status_code == 303
    assert is_paused("default", "emails")


def test_the_action_url_takes_posts_only(superuser):
    response = superuser.get(ACTION, {"backend": "default", "action": "pause", "queue": "q"})
    assert response.status_code == 405
    assert superuser.post(DASHBOARD).status_code == 405
    assert not Pause.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"backend": "nope", "action": "pause", "queue": "emails"},
        {"action": "pause", "queue": "emails"},
        {"backend": "default", "action": "explode", "queue": "emails"},
        {"backend": "default", "queue": "emails"},
        {"backend": "default", "action": "pause"},
        {"backend": "default", "action": "pause", "queue": "q" * 129},
        {"backend": "default", "action": "retry_group", "task_path": ADD},
        {"backend": "default", "action": "discard_group", "exception_class": "builtins.X"},
    ],
)
def test_bad_input_is_a_400_that_writes_nothing(superuser, world, data):
    before = (set(Pause.objects.values_list("queue_name", flat=True)), Job.objects.count())
    failed = FailedExecution.objects.count()

    response = superuser.post(ACTION, data)

    assert response.status_code == 400
    assert response.content.decode()
    assert (set(Pause.objects.values_list("queue_name", flat=True)), Job.objects.count()) == before
    assert FailedExecution.objects.count() == failed


def test_unknown_backend_pages_are_a_400_that_names_the_backends(superuser):
    for url in (DASHBOARD, PANELS_URL):
        response = superuser.get(url, {"backend": "nope"})
        assert response.status_code == 400
        assert "Unknown backend 'nope'" in response.content.decode()
        assert "default" in response.content.decode()


# -- the app index, and the small pieces -------------------------------------------------------


def test_app_index_links_to_the_dashboard(superuser):
    content = superuser.get(APP_INDEX).content.decode()

    assert f'href="{DASHBOARD}"' in content
    assert "Queue dashboard" in content


def test_app_index_hides_the_link_from_users_who_cannot_view_jobs(db):
    staff = client_for(user_with("view_process"))

    response = staff.get(APP_INDEX)
    assert response.status_code == 200
    assert DASHBOARD not in response.content.decode()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.4, "0 s"),
        (12.7, "12 s"),
        (59.9, "59 s"),
        (180, "3 min"),
        (7200, "2 h"),
        (3 * 86_400, "3 d"),
        (-5, "0 s"),
    ],
)
def test_human_age(seconds, text):
    assert human_age(seconds) == text


def test_throughput_chart_scales_the_busiest_minute_to_the_plot():
    start = timezone.now().replace(second=0, microsecond=0)
    minutes = tuple(
        MinuteThroughput(start + timedelta(minutes=index), index % 3, 1 if index == 5 else 0)
        for index in range(60)
    )

    chart = throughput_chart(minutes)

    assert (chart.succeeded, chart.failed, chart.peak) == (60, 1, 3)
    assert len(chart.bars) == 60
    tallest = chart.bars[5]  # 2 succeeded, 1 failed: the peak
    assert tallest.failed_y == pytest.approx(chart.top)
    assert tallest.succeeded_height == pytest.approx(2 * tallest.failed_height, abs=0.02)
    assert chart.bars[0].succeeded_height == 0
    assert "2 succeeded, 1 failed" in tallest.title
    assert all(bar.x + bar.width <= chart.right for bar in chart.bars)
