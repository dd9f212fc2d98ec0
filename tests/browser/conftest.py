"""Browser fixtures: Debian's Chromium driven by Playwright, against the real gunicorn (``live_server``).

Chromium comes from the distribution (``apt-get install chromium``; ``.ci/run`` installs it), never
from ``playwright install``. When /usr/bin/chromium is missing the browser tests are skipped with
that reason on a developer's machine, and fail under ``CI=true``: CI must never pass without them.
Screenshots of every page go to ``tests/artifacts/browser/<backend>/`` (not committed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("SCIM_BRIDGE_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Launch headless Chromium once per session."""
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests cannot run under CI: {reason}")
        pytest.skip(f"browser tests skipped on this machine: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """Return a fresh page in a context of its own (its own cookies)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def shots(database_url: str) -> Any:
    """Return a function saving a full-page screenshot under tests/artifacts/browser/<backend>/."""
    directory = ARTIFACTS / ("postgresql" if database_url.startswith("postgresql") else "sqlite")
    directory.mkdir(parents=True, exist_ok=True)

    def shoot(page: Any, name: str) -> Path:
        from playwright.sync_api import Error as PlaywrightError  # present: the page came from it

        path = directory / f"{name}.png"
        # Headless Chromium now and then answers "Unable to capture screenshot" for a full-page
        # capture on a busy machine; the page is fine and a second attempt succeeds.
        for attempt in range(3):
            try:
                page.screenshot(path=str(path), full_page=True)
                return path
            except PlaywrightError as error:
                if "Unable to capture screenshot" not in str(error) or attempt == 2:
                    raise
                page.wait_for_timeout(200)
        return path

    return shoot
