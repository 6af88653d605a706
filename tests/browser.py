"""Support for the tests that drive a real headless Chromium through Playwright.

They use Debian's Chromium (``/usr/bin/chromium``, installed by ``ensure_chromium``
in scripts/_env.sh), never a browser build of Playwright's own. Without it, or
without the playwright package, a browser test skips and says why; in CI
(``CI=true``) a missing Chromium fails it instead, since CI must run it.

Use the ``browser_page`` fixture (a fresh page in a fresh browser, a new
temporary profile each time; import ``browser_page_fixture`` to get it) or
``launched_chromium`` and ``new_page``, and ``save_screenshot``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# How long a Playwright wait lasts unless a test says otherwise (milliseconds).
DEFAULT_TIMEOUT_MS = 30_000


def _unavailable(reason: str) -> None:
    """Skip, or in CI (where the browser tests must run) fail, saying why."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run here)", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> Any:
    """The ``playwright.sync_api`` module, once Chromium and Playwright are known
    to be there; otherwise skip (or fail in CI)."""
    try:
        from playwright import sync_api
    except ImportError as error:
        _unavailable(f"playwright cannot be imported ({error}); install the dev extra")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(
            f"{CHROMIUM} is missing: run scripts/setup, or as root "
            "apt-get install chromium chromium-driver"
        )
    return sync_api


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium, launched headless by Playwright's sync API; skips (or
    fails in CI) when it cannot be. ``launch()`` gives it a new temporary
    user-data directory, removed when it closes."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any) -> Any:
    """A page in a fresh browser context, with Playwright's waits bounded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    return context.new_page()


# Imported by a test module under this function's name (``from tests.browser
# import browser_page_fixture``), used by the test as ``browser_page``.
@pytest.fixture(name="browser_page")
def browser_page_fixture(monkeypatch) -> Iterator[Any]:
    """A page of a fresh headless Chromium."""
    with launched_chromium() as browser:
        # Playwright's sync API keeps an asyncio loop running in this thread, so
        # Django would refuse the test's own ORM calls ("You cannot call this
        # from an async context"). They are plain blocking calls made between
        # browser steps, never inside the loop: let them through for this test.
        # A runtime_env fixture set up before this one does not inherit it.
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        page = new_page(browser)
        try:
            yield page
        finally:
            page.context.close()
            # With a loop running, Django keeps this thread's connections apart
            # from those it had before (a context-local store): the test's ORM
            # calls opened new ones, which pytest-django never sees. Close them
            # while the loop still runs, or the test database cannot be dropped
            # ("is being accessed by other users").
            connections.close_all()


# Imported by a test module as ``live_site_fixture``, used as ``live_site``.
@pytest.fixture(name="live_site")
def live_site_fixture(live_server) -> Any:
    """pytest-django's live server, serving the admin with its own CSS and
    JavaScript (tests/settings.py points STATIC_URL and STATIC_ROOT at them)."""
    return live_server


def save_screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as tests/artifacts/NAME(.png); returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    if not filename.endswith(".png"):
        filename += ".png"
    path = ARTIFACTS / filename
    page.screenshot(path=str(path), full_page=full_page)
    return path
