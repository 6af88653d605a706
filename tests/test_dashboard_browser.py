"""The admin dashboard end to end, in a real headless Chromium.

A superuser logs in through the admin's login form and watches the dashboard
(``admin:dj_queue_dashboard``) follow a real ``manage.py dj_queue`` runtime
through its own background refresh, without reloading the page: a queue
filling, pausing and resuming it with its buttons, the jobs draining into the
throughput panel, failures grouping and their group's Retry button.

The dashboard's DOM contract this test reads:
- ``#dj-queue-dashboard`` with ``data-refresh-url``, ``data-refresh-seconds`` and
  ``data-refreshes`` (one more after each background refresh); ``?refresh=1``
  refreshes every second, ``?backend=ALIAS`` picks the backend;
- ``#dj-queue-queues tr[data-queue=NAME]`` with ``td[data-field=ready|...|paused]``
  and a ``button[data-action=pause|resume]``;
- ``svg#dj-queue-throughput[data-succeeded][data-failed]`` (the last hour);
- ``#dj-queue-processes tr[data-process]``;
- ``#dj-queue-failures tr[data-failure-task][data-failure-exception]`` with
  ``td[data-field=count]`` and ``button[data-action=retry_group|discard_group]``;
- actions redirect back to the dashboard with an admin message.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.tasks import TaskResultStatus
from django.urls import NoReverseMatch, reverse

from dj_queue.models import FailedExecution, Job, ReadyExecution
from dj_queue.operations.queues import is_paused
from tests.browser import browser_page_fixture, live_site_fixture, save_screenshot  # noqa: F401
from tests.conftest import wait_until
from tests.taskapp.tasks import fail, sleep_for

pytestmark = pytest.mark.slow

ALIAS = "default"
QUEUE = "dashboard"
JOBS = 30
FAILING = 3
TIMEOUT_MS = 30_000
USERNAME = "dashboard-admin"
PASSWORD = "correct horse battery staple"

# What a dashboard count cell reads ("1,234", "10,000+") as a number.
JS_COUNT = "(text) => parseInt((text || '').replace(/[^0-9]/g, ''), 10)"


# -- reading the page ------------------------------------------------------------------


def expect(*args, **kwargs):
    """Playwright's ``expect``, imported late: without playwright the
    ``browser_page`` fixture skips the test (or fails it in CI) and says why."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def queue_row(page, name: str = QUEUE):
    return page.locator(f'#dj-queue-queues tr[data-queue="{name}"]')


def queue_cell(page, field: str, name: str = QUEUE):
    return queue_row(page, name).locator(f'td[data-field="{field}"]')


def count_of(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


def refreshes(page) -> int:
    return int(page.locator("#dj-queue-dashboard").get_attribute("data-refreshes") or 0)


def mark(page) -> str:
    """Leave a marker on ``window``: it survives background refreshes, not a reload."""
    token = uuid.uuid4().hex
    page.evaluate("(token) => { window.__djQueueTestMarker = token; }", token)
    return token


def assert_not_reloaded(page, token: str) -> None:
    assert page.evaluate("() => window.__djQueueTestMarker") == token, "the page reloaded"


def wait_for_throughput(page, field: str, at_least: int) -> None:
    page.wait_for_function(
        "([field, least]) => {"
        "  const svg = document.querySelector('#dj-queue-throughput');"
        "  return svg !== null && Number(svg.dataset[field]) >= least;"
        "}",
        arg=[field, at_least],
        timeout=TIMEOUT_MS,
    )


def wait_for_ready_count(page, expected: int, name: str = QUEUE) -> None:
    page.wait_for_function(
        "([name, expected]) => {"
        f"  const count = {JS_COUNT};"
        "  const cell = document.querySelector("
        '    `#dj-queue-queues tr[data-queue="${name}"] td[data-field="ready"]`);'
        "  return cell !== null && count(cell.textContent) === expected;"
        "}",
        arg=[name, expected],
        timeout=TIMEOUT_MS,
    )


def wait_for_drained(page, name: str = QUEUE) -> None:
    """Wait until the queue has no ready job: its row reads 0, or it has gone (the
    panel lists the queues with ready, scheduled, blocked or failed jobs or a
    pause; a queue whose jobs all ran, or are running, has no row)."""
    page.wait_for_function(
        "(name) => {"
        f"  const count = {JS_COUNT};"
        "  const table = document.querySelector('#dj-queue-queues');"
        "  if (table === null) return false;"
        "  const cell = table.querySelector("
        '    `tr[data-queue="${name}"] td[data-field="ready"]`);'
        "  return cell === null || count(cell.textContent) === 0;"
        "}",
        arg=name,
        timeout=TIMEOUT_MS,
    )


def refreshing_every_second(page, url: str) -> None:
    """Actions redirect back to the dashboard; make sure it refreshes every second."""
    root = page.locator("#dj-queue-dashboard")
    if root.get_attribute("data-refresh-seconds") != "1":
        page.goto(url)
    expect(root).to_have_attribute("data-refresh-seconds", "1", timeout=TIMEOUT_MS)


def act(page, button) -> None:
    """Click an action's button and wait for the redirect back with its message."""
    with page.expect_navigation(timeout=TIMEOUT_MS):
        button.click()
    expect(page.locator("#dj-queue-dashboard")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("ul.messagelist li").first).to_be_visible(timeout=TIMEOUT_MS)


# -- the test ----------------------------------------------------------------------------


def dashboard_path() -> str:
    try:
        return reverse("admin:dj_queue_dashboard")
    except NoReverseMatch:
        pytest.fail("no URL named admin:dj_queue_dashboard: the dashboard is not installed")


def log_in(page, live_site, next_url: str) -> None:
    page.goto(f"{live_site.url}{reverse('admin:login')}?next={quote(next_url, safe='/')}")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation(timeout=TIMEOUT_MS):
        page.click('#login-form [type="submit"]')


def test_dashboard_follows_a_running_queue(live_site, start_runtime, browser_page):
    # start_runtime comes before browser_page: the runtime's environment is
    # taken before the browser fixture lets this test's ORM calls past Django's
    # async check (see tests/browser.py).
    page = browser_page
    User.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    path = f"{dashboard_path()}?backend={ALIAS}&refresh=1"
    url = f"{live_site.url}{path}"
    try:
        log_in(page, live_site, path)
        root = page.locator("#dj-queue-dashboard")
        expect(root).to_be_visible(timeout=TIMEOUT_MS)
        assert page.url == url
        expect(root).to_have_attribute("data-refresh-seconds", "1")
        assert root.get_attribute("data-refresh-url")
        for panel in ("#dj-queue-queues", "#dj-queue-throughput", "#dj-queue-processes"):
            expect(page.locator(panel)).to_have_count(1)

        # The queue fills: the page sees it through its own refresh, not a reload.
        token = mark(page)
        seen = refreshes(page)
        jobs = [sleep_for.using(queue_name=QUEUE).enqueue(0.1) for _ in range(JOBS)]
        wait_for_ready_count(page, JOBS)
        assert_not_reloaded(page, token)
        assert refreshes(page) > seen
        expect(queue_cell(page, "paused")).to_have_text("no")

        # Pause it with its button.
        act(page, queue_row(page).locator('button[data-action="pause"]'))
        expect(queue_cell(page, "paused")).to_have_text("yes", timeout=TIMEOUT_MS)
        expect(queue_row(page).locator('button[data-action="resume"]')).to_have_count(1)
        expect(queue_row(page).locator('button[data-action="pause"]')).to_have_count(0)
        wait_until(lambda: is_paused(ALIAS, QUEUE), message="no Pause row after Pause")

        # A runtime starts; the paused queue keeps its jobs.
        runtime = start_runtime()
        refreshing_every_second(page, url)
        token = mark(page)
        expect(page.locator("#dj-queue-processes tr[data-process]").first).to_be_attached(
            timeout=TIMEOUT_MS
        )
        worker = page.locator("#dj-queue-processes tr[data-process]").filter(
            has=page.locator('td[data-field="kind"]', has_text="worker")
        )
        expect(worker.first).to_be_attached(timeout=TIMEOUT_MS)
        assert count_of(queue_cell(page, "ready").inner_text()) == JOBS
        assert_not_reloaded(page, token)

        # Resume it: the worker drains it and the throughput panel counts the jobs.
        act(page, queue_row(page).locator('button[data-action="resume"]'))
        expect(queue_cell(page, "paused")).to_have_text("no", timeout=TIMEOUT_MS)
        expect(queue_row(page).locator('button[data-action="pause"]')).to_have_count(1)
        wait_until(lambda: not is_paused(ALIAS, QUEUE), message="Pause row left after Resume")
        refreshing_every_second(page, url)
        token = mark(page)
        wait_for_drained(page)
        wait_for_throughput(page, "succeeded", JOBS)
        assert_not_reloaded(page, token)
        for job in jobs:
            job.refresh()
            assert job.status == TaskResultStatus.SUCCESSFUL, runtime.log()

        # Jobs fail; their group shows with its count.
        failing = [fail.using(queue_name=QUEUE).enqueue("dashboard") for _ in range(FAILING)]
        failing_ids = [uuid.UUID(result.id) for result in failing]
        wait_until(
            lambda: FailedExecution.objects.filter(job_id__in=failing_ids).count() == FAILING,
            timeout=30,
            message=runtime.log(),
        )
        task_path = Job.objects.get(pk=failing_ids[0]).task_path
        exception_class = FailedExecution.objects.get(job_id=failing_ids[0]).exception_class
        group = page.locator(
            f'#dj-queue-failures tr[data-failure-task="{task_path}"]'
            f'[data-failure-exception="{exception_class}"]'
        )
        expect(group.locator('td[data-field="count"]')).to_have_text(
            re.compile(rf"^\s*{FAILING}\s*$"), timeout=TIMEOUT_MS
        )
        expect(group.locator('button[data-action="discard_group"]')).to_have_count(1)
        expect(queue_cell(page, "failed")).to_have_text(
            re.compile(rf"^\s*{FAILING}\s*$"), timeout=TIMEOUT_MS
        )
        wait_for_throughput(page, "failed", FAILING)
        assert_not_reloaded(page, token)

        # The page with everything in it: the queue, the hour's throughput, the
        # runtime's processes, the failure group.
        shot = save_screenshot(page, "dashboard.png")
        assert shot.is_file() and shot.stat().st_size > 0

        # Retry the group, with the runtime stopped so the jobs cannot fail again
        # before the database is read.
        assert runtime.stop() == 0, runtime.log()
        act(page, group.locator('button[data-action="retry_group"]'))
        wait_until(
            lambda: not FailedExecution.objects.filter(job_id__in=failing_ids).exists(),
            timeout=30,
            message="the retried jobs are still failed",
        )
        assert ReadyExecution.objects.filter(job_id__in=failing_ids).count() == FAILING
        expect(group).to_have_count(0, timeout=TIMEOUT_MS)

        assert save_screenshot(page, "dashboard-retried.png").is_file()
    except BaseException:
        save_screenshot(page, "dashboard-failure.png")
        raise
